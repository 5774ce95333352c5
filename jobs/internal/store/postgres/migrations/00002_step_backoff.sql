-- A step the flag service could not take (5xx, network, 429) is retried with backoff: it is
-- not claimed again before next_attempt_at.

-- +goose Up
ALTER TABLE scheduled_steps ADD COLUMN next_attempt_at timestamptz;

-- +goose Down
ALTER TABLE scheduled_steps DROP COLUMN next_attempt_at;
