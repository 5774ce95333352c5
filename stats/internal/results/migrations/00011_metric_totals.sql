-- +goose Up
-- The totals of an experiment, kept between its refreshes (stats/metricsql Totals; worker.go,
-- totals): totals_id names its ClickHouse partition of experiment_metric_totals, parts the
-- metric parts it adds up in its arrays' order, each with the fold ids it adds up
-- ([{"metric", "version", "part", "folds"}]), contexts how many rows it holds (checked against
-- the partition before it is read), updated_at when it was last written (a refresh that folded
-- a day writes it anew), used_at when a refresh last read it (the sweep drops totals no
-- refresh read for a while, with their partition).
CREATE TABLE results_metric_totals (
    experiment_id   uuid PRIMARY KEY,
    totals_id       bigint NOT NULL,
    parts           jsonb NOT NULL,
    contexts        bigint NOT NULL,
    updated_at      timestamptz NOT NULL,
    used_at         timestamptz NOT NULL
);

-- +goose Down
DROP TABLE results_metric_totals;
