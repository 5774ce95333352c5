-- +goose Up
-- Metric catalog (per project), experiments (on a flag in an environment) and guardrails.
CREATE TABLE metrics (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key         text NOT NULL,
    definition  jsonb NOT NULL,        -- domain.MetricDefinition
    version     bigint NOT NULL DEFAULT 1,
    archived    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT metrics_project_key UNIQUE (project_id, key)
);

CREATE TABLE metric_versions (
    metric_id   uuid NOT NULL REFERENCES metrics(id) ON DELETE CASCADE,
    version     bigint NOT NULL,
    definition  jsonb NOT NULL,
    actor_type  text NOT NULL,
    actor_id    text NOT NULL,
    actor_name  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (metric_id, version)
);

CREATE TABLE experiments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    environment_id  uuid NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    flag_id         uuid NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    key             text NOT NULL,
    status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'running', 'stopped', 'concluded')),
    definition      jsonb NOT NULL,    -- domain.ExperimentDefinition
    metric_versions jsonb NOT NULL DEFAULT '{}',
    decision        jsonb,
    started_at      timestamptz,
    stopped_at      timestamptz,
    concluded_at    timestamptz,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT experiments_project_key UNIQUE (project_id, key)
);
-- One running experiment per flag and environment: two would fight over its rollout.
CREATE UNIQUE INDEX experiments_one_running ON experiments (flag_id, environment_id) WHERE status = 'running';
CREATE INDEX experiments_status ON experiments (status);

CREATE TABLE guardrails (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    environment_id  uuid NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    flag_id         uuid NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    experiment_id   uuid REFERENCES experiments(id) ON DELETE CASCADE,
    metric_key      text NOT NULL,
    tolerance       double precision NOT NULL,
    action          text NOT NULL CHECK (action IN ('alert', 'rollback')),
    control         text NOT NULL,
    treatments      text[] NOT NULL,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'breached', 'disabled')),
    breach          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guardrails_status ON guardrails (status);

-- +goose Down
DROP TABLE guardrails;
DROP TABLE experiments;
DROP TABLE metric_versions;
DROP TABLE metrics;
