-- +goose NO TRANSACTION
-- What the experiment results workers (stats/metricsql) read.
--
-- experiment_units: per experiment x context, the variation and time of the first exposure and
-- the number of distinct variations seen (contexts that saw more than one are excluded from the
-- analysis and counted as a data-quality signal). Maintained at insert time like
-- first_exposures; argMin, min and uniqExact are idempotent, so duplicate exposures change
-- nothing. Existing exposures are backfilled (rows inserted while this runs may be counted by
-- both the view and the backfill: harmless for the same reason).
--
-- experiment_metric_days: daily per-context rollups of a metric (written by the workers), so a
-- refresh reads the rollups plus the newest raw day instead of every event since the start.
-- Refolding a day writes identical keys; ReplacingMergeTree keeps one and reads use FINAL.

-- +goose Up
-- (Its columns are named unlike the exposures columns they aggregate: ClickHouse aliases are
-- query-wide, and an alias variation_key on the argMin state would capture the uniqExact's
-- argument.)
CREATE TABLE IF NOT EXISTS experiment_units (
    environment_id   String,
    experiment_key   String,
    context_kind     String,
    context_key      String,
    first_variation  AggregateFunction(argMin, String, UInt64),
    first_exposed_ms AggregateFunction(min, UInt64),
    variations       AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree()
ORDER BY (environment_id, experiment_key, context_kind, context_key);

CREATE MATERIALIZED VIEW IF NOT EXISTS experiment_units_mv TO experiment_units AS
SELECT
    environment_id,
    experiment_key,
    context_kind,
    context_key,
    argMinState(variation_key, timestamp_ms) AS first_variation,
    minState(timestamp_ms)                   AS first_exposed_ms,
    uniqExactState(variation_key)            AS variations
FROM exposures
WHERE experiment_key != ''
GROUP BY environment_id, experiment_key, context_kind, context_key;

INSERT INTO experiment_units (environment_id, experiment_key, context_kind, context_key, first_variation, first_exposed_ms, variations)
SELECT environment_id, experiment_key, context_kind, context_key,
       argMinState(variation_key, timestamp_ms), minState(timestamp_ms), uniqExactState(variation_key)
FROM exposures
WHERE experiment_key != ''
GROUP BY environment_id, experiment_key, context_kind, context_key;

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
DROP TABLE IF EXISTS experiment_units_mv;
DROP TABLE IF EXISTS experiment_units;
