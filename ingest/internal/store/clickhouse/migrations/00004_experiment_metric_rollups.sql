-- +goose NO TRANSACTION
-- experiment_metric_rollups replaces experiment_metric_days: the same daily per-context rollups
-- of a metric (written by the stats workers), plus the id of the fold that wrote each row.
--
-- Why: experiment_metric_days deduplicated refolded days with ReplacingMergeTree and read with
-- FINAL, and FINAL is a single-threaded merge on read: 4.7 s of a 5.2 s rollup scan for one
-- metric over 5M units (docs/benchmarks.md). Now every fold writes its rows under a fresh random
-- fold_id and the worker records, in Postgres, the one fold of each day that counts; reads keep
-- only the recorded folds' rows (fold_id IN (...)). A fold that crashed half-way or was
-- repeated leaves rows nobody reads, never double counts, and needs no merge on read.
--
-- The old table is dropped: rollups are derived data, and the stats service's own migration
-- forgets the days it had folded, so they are folded again into this table.

-- +goose Up
CREATE TABLE IF NOT EXISTS experiment_metric_rollups (
    environment_id String,
    experiment_key String,
    metric_key     String,
    metric_version UInt64,
    part           UInt8,
    day            Date,
    fold_id        UInt64,
    context_kind   String,
    context_key    String,
    events         UInt64,
    value_sum      Float64
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (environment_id, experiment_key, metric_key, metric_version, part, day, fold_id, context_kind, context_key);

DROP TABLE IF EXISTS experiment_metric_days;

-- +goose Down
DROP TABLE IF EXISTS experiment_metric_rollups;

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
