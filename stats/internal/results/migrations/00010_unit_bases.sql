-- +goose Up
-- The units base of an experiment, kept between its refreshes (stats/metricsql UnitsBase;
-- worker.go, units): snapshot_id names its ClickHouse partition of experiment_unit_snapshots,
-- watermark is when exposures may have been received without being in it (the next refresh
-- merges their contexts again and writes the base anew), units how many contexts it holds
-- (checked against the partition before it is read), built_at when it was last merged from
-- every state (again after a day), used_at when a refresh last wrote it (the sweep drops a
-- base no refresh read for a while, with its partition).
CREATE TABLE results_unit_bases (
    experiment_id   uuid PRIMARY KEY,
    snapshot_id     bigint NOT NULL,
    watermark       timestamptz NOT NULL,
    units           bigint NOT NULL,
    built_at        timestamptz NOT NULL,
    used_at         timestamptz NOT NULL
);

-- +goose Down
DROP TABLE results_unit_bases;
