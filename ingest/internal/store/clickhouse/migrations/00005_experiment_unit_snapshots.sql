-- +goose NO TRANSACTION
-- experiment_unit_snapshots: the units of one results refresh, materialized once (stats/metricsql
-- MaterializeUnits) and read by every metric's passes, instead of merging experiment_units'
-- aggregate states again in every query (twice per pass per metric). One partition per refresh
-- (snapshot_id), dropped when the refresh ends; partitions a crashed refresh left behind are
-- dropped by the next sweep. bucket is cityHash64(context_kind, context_key) % 1024, the same
-- slicing the passes apply to the rollups and raw events, first in the sorting key so a pass
-- reads only its buckets. variation is '' for a context exposed to several variations. The
-- sorting key is the bucket alone: sorting a million string keys on insert cost more (≈ 4 s on
-- 18.16) than the whole merge of the states, and a pass reads its buckets whole anyway.

-- +goose Up
CREATE TABLE IF NOT EXISTS experiment_unit_snapshots (
    snapshot_id  UInt64,
    bucket       UInt16,
    context_kind String,
    context_key  String,
    variation    String,
    first_ms     UInt64
) ENGINE = MergeTree()
PARTITION BY snapshot_id
ORDER BY bucket;

-- +goose Down
DROP TABLE IF EXISTS experiment_unit_snapshots;
