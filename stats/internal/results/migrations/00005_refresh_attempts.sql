-- +goose Up
-- How many refreshes of the experiment have failed in a row: the sweep backs off a failing
-- experiment (worker.go, dueAt) instead of sending ClickHouse the same failing queries every interval.
ALTER TABLE results_refresh_failures ADD COLUMN attempts integer NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE results_refresh_failures DROP COLUMN attempts;
