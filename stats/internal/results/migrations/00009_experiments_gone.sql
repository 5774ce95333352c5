-- +goose Up
-- What the results workers know of an experiment with rollups, for when the flag service no
-- longer has it (its project deleted, or its key reused by another experiment): the rollups'
-- partition key (environment_id, experiment_key — results_snapshots keeps no environment) and
-- its project, recorded when a refresh folds days and by the hourly maintenance
-- (worker.go, maintained); gone_since is when the maintenance first found it gone (cleared
-- if the flag service has it again). Its rollups are dropped once it has been gone for
-- -results-rollup-retention. environment_id is null for an experiment gone before this
-- migration and never seen since, until the maintenance finds it from the rollup rows of one
-- of its recorded folds (worker.go, rollupEnvironment).
CREATE TABLE results_experiments (
    experiment_id   uuid PRIMARY KEY,
    environment_id  text,
    project_key     text NOT NULL,
    experiment_key  text NOT NULL,
    gone_since      timestamptz
);

-- +goose Down
DROP TABLE results_experiments;
