-- +goose Up
-- An experiment's rollups are dropped in steps (worker.go, dropExpiredRollups): marked first
-- (done = false: its results are final from then on, a refresh is refused), then its folds
-- forgotten and its partitions dropped, then done = true. A run interrupted between the steps
-- is finished by the next one; the rows marked before this migration were complete drops.
ALTER TABLE results_rollups_dropped ADD COLUMN done boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE results_rollups_dropped DROP COLUMN done;
