-- +goose Up
-- Deleting ClickHouse rollups (worker.go, maintainRollups). results_rollups_dropped: the
-- experiments whose rollups were dropped once their results were final plus
-- -results-rollup-retention (a refresh of the experiment forgets the mark before it folds
-- again, so rollups it writes are dropped again). results_rollup_compactions: when a closed
-- month of an experiment's rollups was last rewritten without its replaced folds; a fold
-- recorded after that (folded_at) makes the month due again.
CREATE TABLE results_rollups_dropped (
    experiment_id   uuid PRIMARY KEY,
    dropped_at      timestamptz NOT NULL
);
CREATE TABLE results_rollup_compactions (
    experiment_id   uuid NOT NULL,
    month           date NOT NULL,
    compacted_at    timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, month)
);

-- +goose Down
DROP TABLE results_rollup_compactions;
DROP TABLE results_rollups_dropped;
