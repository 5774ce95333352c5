-- +goose NO TRANSACTION
-- experiment_metric_days: daily per-context rollups of a metric (written by the workers), so a
-- refresh reads the rollups plus the newest raw day instead of every event since the start.
-- Refolding a day writes identical keys; ReplacingMergeTree keeps one and reads use FINAL.

-- +goose Up
CREATE TABLE IF NOT EXISTS experiment_metric_days (
    environment_id String,
    experiment_key String,
    metric_key     String,
    metric_version UInt64,
    part           UInt8,
    context_kind   String,
    context_key    String,
    day            Date,
    events         UInt64,
    value_sum      Float64,
    folded_at      DateTime
) ENGINE = ReplacingMergeTree(folded_at)
PARTITION BY toYYYYMM(day)
ORDER BY (environment_id, experiment_key, metric_key, metric_version, part, context_kind, context_key, day);

-- +goose Down
DROP TABLE IF EXISTS experiment_metric_days;
