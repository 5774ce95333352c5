-- +goose Up
-- GET /api/v1/experiments?status=…&stopped_after=… (the stats results workers' list of the
-- experiments stopped recently): read by this index instead of every stopped or concluded
-- experiment ever, which only ever grow in number.
CREATE INDEX experiments_stopped_at ON experiments (status, stopped_at) WHERE stopped_at IS NOT NULL;

-- +goose Down
DROP INDEX experiments_stopped_at;
