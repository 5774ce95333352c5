-- +goose NO TRANSACTION
-- Raw events, one row per event (per counter for summaries). Every statement is idempotent
-- (IF NOT EXISTS): ClickHouse has no transactional DDL, so goose may re-run a migration that
-- was interrupted. Portable to ClickHouse 18.16 (no LowCardinality, DateTime64, TTL, Map).
--
-- Dedup: the sorting key ends with event_id and holds only values that a retried event repeats
-- (not receipt or clamped time), so ReplacingMergeTree eventually collapses duplicates; until
-- merges run, exact queries group by event_id (see README).

-- +goose Up
CREATE TABLE IF NOT EXISTS exposures (
    environment_id      String,
    event_id            UUID,
    timestamp           DateTime,
    timestamp_ms        UInt64,
    client_timestamp_ms Int64,
    received_at         DateTime,
    clamped             UInt8,
    context_kind        String,
    context_key         String,
    flag_key            String,
    variation_key       String,
    flag_version        UInt64,
    reason              String,
    rule_id             String,
    experiment_key      String,
    sdk_name            String,
    sdk_version         String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (environment_id, experiment_key, flag_key, context_key, event_id);

CREATE TABLE IF NOT EXISTS tracks (
    environment_id      String,
    event_id            UUID,
    timestamp           DateTime,
    timestamp_ms        UInt64,
    client_timestamp_ms Int64,
    received_at         DateTime,
    clamped             UInt8,
    context_kind        String,
    context_key         String,
    event_key           String,
    value               Float64,
    has_value           UInt8,
    properties Nested (
        key   String,
        type  String,
        value String
    ),
    sdk_name            String,
    sdk_version         String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (environment_id, event_key, context_key, event_id);

CREATE TABLE IF NOT EXISTS evaluation_summaries (
    environment_id      String,
    event_id            UUID,
    timestamp           DateTime,
    received_at         DateTime,
    clamped             UInt8,
    window_start        DateTime,
    window_end          DateTime,
    flag_key            String,
    variation_key       String,
    flag_version        UInt64,
    count               UInt64,
    context_kind        String,
    context_key         String,
    sdk_name            String,
    sdk_version         String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (environment_id, flag_key, variation_key, flag_version, event_id);

-- +goose Down
DROP TABLE IF EXISTS evaluation_summaries;
DROP TABLE IF EXISTS tracks;
DROP TABLE IF EXISTS exposures;
