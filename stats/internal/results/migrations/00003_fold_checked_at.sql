-- +goose Up
-- Each recorded fold says up to when its day's data is known: checked_at is the worker's time
-- when the fold's read started, or when a later check found no event of the day received since.
-- The fold holds every event received before checked_at minus the settle margin; a day that
-- received events after that is folded again (late events, worker.go). Folds recorded before
-- this migration only know when they were recorded (after their read): an hour earlier is a
-- safe bound, at worst the day is folded once more.
ALTER TABLE results_folds ADD COLUMN checked_at timestamptz;
UPDATE results_folds SET checked_at = folded_at - interval '1 hour';
ALTER TABLE results_folds ALTER COLUMN checked_at SET NOT NULL;

-- +goose Down
ALTER TABLE results_folds DROP COLUMN checked_at;
