-- +goose Up
-- Organizations, users, memberships and API tokens.
CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key         text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text NOT NULL,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- role: owner | admin | project_admin | developer | viewer.
-- project_ids scopes project_admin to some projects (NULL: all projects of the organization).
CREATE TABLE memberships (
    org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'project_admin', 'developer', 'viewer')),
    project_ids uuid[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE projects (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key         text NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_org_key UNIQUE (org_id, key)
);

CREATE TABLE environments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key             text NOT NULL,
    name            text NOT NULL,
    color           text NOT NULL DEFAULT '#888888',
    critical        boolean NOT NULL DEFAULT false,
    locked          boolean NOT NULL DEFAULT false,
    lock_reason     text NOT NULL DEFAULT '',
    position        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT environments_project_key UNIQUE (project_id, key)
);

-- kind: personal (acts as user_id) | service (own role, optional project/environment scope).
-- The secret is stored as a SHA-256 hash; token_id is the public part used for lookup.
CREATE TABLE api_tokens (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    token_id        text NOT NULL UNIQUE,
    secret_hash     bytea NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('personal', 'service')),
    name            text NOT NULL,
    user_id         uuid REFERENCES users(id) ON DELETE CASCADE,
    role            text CHECK (role IN ('owner', 'admin', 'project_admin', 'developer', 'viewer')),
    project_id      uuid REFERENCES projects(id) ON DELETE CASCADE,
    environment_id  uuid REFERENCES environments(id) ON DELETE CASCADE,
    expires_at      timestamptz,
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    created_by      uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'personal' AND user_id IS NOT NULL AND role IS NULL)
        OR (kind = 'service' AND role IS NOT NULL))
);
CREATE INDEX api_tokens_org ON api_tokens (org_id);

-- SDK keys: server keys are secret (hash only); client keys are public (kept to show again).
CREATE TABLE sdk_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    environment_id  uuid NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('server', 'client')),
    name            text NOT NULL,
    key_hash        bytea NOT NULL UNIQUE,
    key_prefix      text NOT NULL,
    public_key      text,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    rotated_from    uuid REFERENCES sdk_keys(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sdk_keys_environment ON sdk_keys (environment_id);

-- +goose Down
DROP TABLE sdk_keys;
DROP TABLE api_tokens;
DROP TABLE environments;
DROP TABLE projects;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE organizations;
