-- +goose NO TRANSACTION
-- Aggregations maintained by materialized views at insert time.
--
-- experiment_units: per experiment x context, the variation of the first exposure and its time,
-- and how many distinct variations the context saw (contexts that saw several are excluded from
-- analyses and counted as a data-quality signal). argMin, min and uniqExact are idempotent, so
-- duplicate exposures cannot change them: exact without dedup.
--
-- active_contexts_monthly: distinct (context_kind, context_key) per environment and month, from
-- exposures and tracks. uniqExact is idempotent too: exact.
--
-- evaluation_counts_daily: summed evaluation counts per environment x flag x variation x day.
-- A sum is not idempotent: a summary delivered twice (an SDK retry after a lost response, a
-- writer replay after a crash) is counted twice here. It is the cheap dashboard path; exact
-- counts come from evaluation_summaries grouped by event_id (README, "Exact queries").

-- +goose Up
-- (The column is first_variation, not variation_key: ClickHouse aliases are
-- query-wide, and an alias variation_key on the argMin state would capture uniqExact's argument.)
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

CREATE TABLE IF NOT EXISTS evaluation_counts_daily (
    environment_id String,
    day            Date,
    flag_key       String,
    variation_key  String,
    evaluations    UInt64
) ENGINE = SummingMergeTree(evaluations)
PARTITION BY toYYYYMM(day)
ORDER BY (environment_id, flag_key, variation_key, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS evaluation_counts_daily_mv TO evaluation_counts_daily AS
SELECT
    environment_id,
    toDate(window_start) AS day,
    flag_key,
    variation_key,
    sum(count)           AS evaluations
FROM evaluation_summaries
GROUP BY environment_id, day, flag_key, variation_key;

CREATE TABLE IF NOT EXISTS active_contexts_monthly (
    environment_id String,
    month          Date,
    contexts       AggregateFunction(uniqExact, String, String)
) ENGINE = AggregatingMergeTree()
ORDER BY (environment_id, month);

CREATE MATERIALIZED VIEW IF NOT EXISTS active_contexts_monthly_exposures_mv TO active_contexts_monthly AS
SELECT environment_id, toStartOfMonth(timestamp) AS month, uniqExactState(context_kind, context_key) AS contexts
FROM exposures
GROUP BY environment_id, month;

CREATE MATERIALIZED VIEW IF NOT EXISTS active_contexts_monthly_tracks_mv TO active_contexts_monthly AS
SELECT environment_id, toStartOfMonth(timestamp) AS month, uniqExactState(context_kind, context_key) AS contexts
FROM tracks
GROUP BY environment_id, month;

-- +goose Down
DROP TABLE IF EXISTS active_contexts_monthly_tracks_mv;
DROP TABLE IF EXISTS active_contexts_monthly_exposures_mv;
DROP TABLE IF EXISTS active_contexts_monthly;
DROP TABLE IF EXISTS evaluation_counts_daily_mv;
DROP TABLE IF EXISTS evaluation_counts_daily;
DROP TABLE IF EXISTS experiment_units_mv;
DROP TABLE IF EXISTS experiment_units;
