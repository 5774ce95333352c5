-- +goose Up
-- Flags (project level), their configuration per environment, and its immutable history.
CREATE TABLE flags (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key           text NOT NULL,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    tags          text[] NOT NULL DEFAULT '{}',
    owner_id      uuid REFERENCES users(id) ON DELETE SET NULL,
    kind          text NOT NULL CHECK (kind IN ('boolean', 'string', 'number', 'json')),
    variations    jsonb NOT NULL,
    temporary     boolean NOT NULL DEFAULT true,
    removal_date  date,
    lifecycle     text NOT NULL DEFAULT 'active' CHECK (lifecycle IN ('active', 'deprecated', 'archived')),
    client_side   boolean NOT NULL DEFAULT false,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    search        tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector('simple', key), 'A') ||
                      setweight(to_tsvector('simple', name), 'B') ||
                      setweight(to_tsvector('simple', description), 'C')) STORED,
    CONSTRAINT flags_project_key UNIQUE (project_id, key)
);
CREATE INDEX flags_search ON flags USING gin (search);
CREATE INDEX flags_tags ON flags USING gin (tags);
CREATE INDEX flags_project_created ON flags (project_id, created_at, id);
CREATE INDEX flags_project_updated ON flags (project_id, updated_at, id);
CREATE INDEX flags_project_name ON flags (project_id, name, id);

-- config holds on, off_variation, prerequisites, targets, rules, fallthrough, salt
-- (the per-environment part of ruleset.Flag); "on" is duplicated for filtering.
CREATE TABLE flag_configs (
    flag_id         uuid NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    environment_id  uuid NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    version         bigint NOT NULL DEFAULT 1,
    "on"            boolean NOT NULL DEFAULT false,
    config          jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flag_id, environment_id)
);
CREATE INDEX flag_configs_environment ON flag_configs (environment_id, "on");

CREATE TABLE flag_config_versions (
    flag_id         uuid NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    environment_id  uuid NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    version         bigint NOT NULL,
    config          jsonb NOT NULL,
    change          text NOT NULL,          -- create | update | toggle | rollback | kill | clone | scheduled
    comment         text NOT NULL DEFAULT '',
    diff            jsonb NOT NULL DEFAULT '[]', -- RFC 6902 patch from the previous version
    actor_type      text NOT NULL,
    actor_id        text NOT NULL,
    actor_name      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flag_id, environment_id, version)
);

-- Segments (per environment): rules in jsonb; member keys in their own table (up to millions).
CREATE TABLE segments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    environment_id  uuid NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    key             text NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    rules           jsonb NOT NULL DEFAULT '[]',
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT segments_environment_key UNIQUE (environment_id, key)
);

CREATE TABLE segment_members (
    segment_id    uuid NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    list          text NOT NULL CHECK (list IN ('included', 'excluded')),
    context_kind  text NOT NULL,
    context_key   text NOT NULL,
    PRIMARY KEY (segment_id, list, context_kind, context_key)
);

-- +goose Down
DROP TABLE segment_members;
DROP TABLE segments;
DROP TABLE flag_config_versions;
DROP TABLE flag_configs;
DROP TABLE flags;
