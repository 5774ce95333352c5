-- +goose Up
-- Append-only audit log of every mutation.
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_type      text NOT NULL,   -- user | token | system
    actor_id        text NOT NULL,
    actor_name      text NOT NULL,
    action          text NOT NULL,   -- e.g. flag.create, flag_config.update, flag_config.kill
    resource_type   text NOT NULL,
    resource_id     text NOT NULL,
    resource_key    text NOT NULL DEFAULT '',
    project_id      uuid,
    environment_id  uuid,
    before          jsonb,
    after           jsonb,
    comment         text NOT NULL DEFAULT '',
    ip              text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_org_at ON audit_log (org_id, at DESC, id DESC);
CREATE INDEX audit_log_org_action ON audit_log (org_id, action, at DESC);
CREATE INDEX audit_log_org_actor ON audit_log (org_id, actor_id, at DESC);
CREATE INDEX audit_log_org_resource ON audit_log (org_id, resource_type, resource_id, at DESC);

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Transactional outbox: one row per committed change of an environment's ruleset. Writers
-- only insert here (no per-environment counter to lock), so changes to one environment commit
-- in parallel; the publisher numbers what it publishes.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    environment_id  uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at    timestamptz
);
CREATE INDEX outbox_pending ON outbox (environment_id, id) WHERE published_at IS NULL;

-- The version of the newest ruleset published per environment. Only the publishing leader
-- writes it, incrementing before each produce, so versions only grow (gaps are harmless).
CREATE TABLE published_rulesets (
    environment_id  uuid PRIMARY KEY,
    version         bigint NOT NULL,
    published_at    timestamptz
);

-- +goose Down
DROP TABLE published_rulesets;
DROP TABLE outbox;
DROP TRIGGER audit_log_no_update ON audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE audit_log;
