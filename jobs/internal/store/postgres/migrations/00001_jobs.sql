-- The jobs service's tables. They live in the schema "jobs" (the service connects with
-- search_path=jobs), beside the flag service's tables in the same database, and goose keeps
-- this service's versions in jobs.goose_db_version.

-- +goose Up

-- Alert outbox: one row per alert key, ever (INSERT ... ON CONFLICT (key) DO NOTHING), leased
-- to one replica at a time while it is sent.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    kind            text NOT NULL,
    project         text NOT NULL DEFAULT '',
    channel         text NOT NULL DEFAULT '',
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    claimed_by      text NOT NULL DEFAULT '',
    first_claimed_at timestamptz,
    ref             text NOT NULL DEFAULT '',
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz
);
CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE status IN ('pending', 'sending');

-- Guardrail breaches seen by this service. A row is written before the flag service is told
-- (status reporting) and completed, in the same transaction as the alert's enqueue, once the
-- flag service answered (reported). At most one breach per guardrail is being reported at a
-- time; a reporting row left behind by a crash is finished by the next sweep.
CREATE TABLE breaches (
    id            bigserial PRIMARY KEY,
    guardrail_id  text NOT NULL,
    project       text NOT NULL,
    environment   text NOT NULL,
    flag          text NOT NULL,
    experiment    text NOT NULL DEFAULT '',
    metric        text NOT NULL,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    decision      jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'reporting' CHECK (status IN ('reporting', 'reported')),
    breached_at   timestamptz,
    action_taken  text NOT NULL DEFAULT '',
    alert_key     text NOT NULL DEFAULT '',
    reported_at   timestamptz
);
CREATE UNIQUE INDEX breaches_one_in_flight ON breaches (guardrail_id) WHERE status = 'reporting';
CREATE INDEX breaches_guardrail ON breaches (guardrail_id, detected_at DESC);

-- Scheduled flag changes: a change has one or more ordered steps (a ramp has several). A step
-- runs when it is due and every earlier step of its change is done.
CREATE TABLE scheduled_changes (
    id             bigserial PRIMARY KEY,
    project        text NOT NULL,
    environment    text NOT NULL,
    environment_id text NOT NULL,
    flag           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('change', 'ramp')),
    comment        text NOT NULL DEFAULT '',
    base_version   bigint NOT NULL,
    created_by     jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    failure        text NOT NULL DEFAULT '',
    cancelled_by   jsonb,
    finished_at    timestamptz
);
CREATE INDEX scheduled_changes_flag ON scheduled_changes (project, environment, flag, created_at DESC);

CREATE TABLE scheduled_steps (
    change_id        bigint NOT NULL REFERENCES scheduled_changes (id) ON DELETE CASCADE,
    position         int NOT NULL,
    execute_at       timestamptz NOT NULL,
    action           jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts         int NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    expected_version bigint,
    result_version   bigint,
    executed_at      timestamptz,
    error            text NOT NULL DEFAULT '',
    PRIMARY KEY (change_id, position)
);
CREATE INDEX scheduled_steps_due ON scheduled_steps (execute_at) WHERE status IN ('pending', 'running');

-- Per-project settings: the Slack channel alerts go to, stale-flag thresholds (NULL: the
-- service's defaults) and whether the weekly digest is sent.
CREATE TABLE project_settings (
    project                     text PRIMARY KEY,
    slack_channel               text NOT NULL DEFAULT '',
    stale_no_evaluations_days   int,
    stale_single_variation_days int,
    digest_enabled              boolean NOT NULL DEFAULT true,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    updated_by                  text NOT NULL DEFAULT ''
);

-- Per-flag overrides of the stale thresholds (NULL: the project's), or ignore it altogether.
CREATE TABLE flag_stale_settings (
    project                     text NOT NULL,
    flag                        text NOT NULL,
    no_evaluations_days         int,
    single_variation_days       int,
    ignore                      boolean NOT NULL DEFAULT false,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    updated_by                  text NOT NULL DEFAULT '',
    PRIMARY KEY (project, flag)
);

-- One digest per project per scheduled run, whichever replica runs it.
CREATE TABLE digest_runs (
    project       text NOT NULL,
    scheduled_for timestamptz NOT NULL,
    stale_flags   int NOT NULL DEFAULT 0,
    alert_key     text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, scheduled_for)
);

-- +goose Down
DROP TABLE digest_runs;
DROP TABLE flag_stale_settings;
DROP TABLE project_settings;
DROP TABLE scheduled_steps;
DROP TABLE scheduled_changes;
DROP TABLE breaches;
DROP TABLE alerts;
