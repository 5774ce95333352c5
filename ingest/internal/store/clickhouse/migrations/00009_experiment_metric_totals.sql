-- +goose NO TRANSACTION
-- experiment_metric_totals: an experiment's folded rollups added up per context, kept between
-- its results refreshes (stats/metricsql Totals). The sums of a refresh then group one row per
-- context from here, plus the rollups of the days folded since and the raw events since the
-- last fold, instead of every day's rollup row of every metric part (at 5M units 44M rows).
-- One partition per totals (totals_id), recorded by the stats service in Postgres with the fold
-- ids it covers; a refresh that folds a new day writes a new partition from the previous one
-- and drops it. events[i] and value_sums[i] are the i-th recorded metric part's. Contexts are
-- named by cityHash64(context_kind, context_key) only: totals are read only when the
-- experiment's units have distinct hashes, and every context here is a unit (the rollups are
-- joined with the units when they are folded). bucket is that hash % 1024, the passes' slicing.

-- +goose Up
CREATE TABLE IF NOT EXISTS experiment_metric_totals (
    totals_id    UInt64,
    bucket       UInt16,
    context_hash UInt64,
    events       Array(Int64),
    value_sums   Array(Float64)
) ENGINE = MergeTree()
PARTITION BY totals_id
ORDER BY bucket;

-- +goose Down
DROP TABLE IF EXISTS experiment_metric_totals;
