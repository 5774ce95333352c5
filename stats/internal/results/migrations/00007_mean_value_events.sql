-- +goose Up
-- A mean metric now averages only the events that carry a value (metricsql.eventSQL): an event
-- sent without one no longer counts as a 0. The days folded before this migration counted them,
-- so the folds of the experiments that will be refreshed again — running ones (as their latest
-- snapshot says) and those without a snapshot yet — are forgotten and folded again at their
-- next refresh. A stopped experiment's folds are kept: its results are final once its late
-- window closes (a refresh within it reads its folded days as they were), and rollup retention
-- finds the experiments whose rollups it drops by their recorded folds.
DELETE FROM results_folds WHERE experiment_id IN (
    SELECT experiment_id FROM (
        SELECT DISTINCT ON (experiment_id) experiment_id, body->>'status' AS status
        FROM results_snapshots ORDER BY experiment_id, computed_at DESC) latest
    WHERE status = 'running')
OR experiment_id NOT IN (SELECT experiment_id FROM results_snapshots);

-- +goose Down
SELECT 1;
