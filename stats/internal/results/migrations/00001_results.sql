-- +goose Up
-- Experiment result snapshots (one per refresh: history for the dashboards' time series) and
-- the days folded into ClickHouse's daily rollups (stats/metricsql).
CREATE TABLE results_snapshots (
    id              bigserial PRIMARY KEY,
    experiment_id   uuid NOT NULL,
    project_key     text NOT NULL,
    experiment_key  text NOT NULL,
    computed_at     timestamptz NOT NULL,
    body            jsonb NOT NULL
);
CREATE INDEX results_snapshots_experiment ON results_snapshots (experiment_id, computed_at DESC);

CREATE TABLE results_folds (
    experiment_id   uuid NOT NULL,
    metric_key      text NOT NULL,
    metric_version  bigint NOT NULL,
    part            smallint NOT NULL,   -- 0 conversion window (by event day), 1 CUPED covariates (by cohort day)
    day             date NOT NULL,
    folded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, metric_key, metric_version, part, day)
);

-- +goose Down
DROP TABLE results_folds;
DROP TABLE results_snapshots;
