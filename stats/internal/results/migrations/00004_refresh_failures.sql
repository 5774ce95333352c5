-- +goose Up
-- The last failed results refresh of an experiment, until a refresh succeeds: the results API
-- tells readers that the latest snapshot is not up to date, and why (worker.go).
CREATE TABLE results_refresh_failures (
    experiment_id   uuid PRIMARY KEY,
    failed_at       timestamptz NOT NULL,
    message         text NOT NULL
);

-- +goose Down
DROP TABLE results_refresh_failures;
