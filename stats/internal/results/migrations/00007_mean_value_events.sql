-- +goose Up
-- A mean metric now averages only the events that carry a value (metricsql.eventSQL): an event
-- sent without one no longer counts as a 0. The days folded before this migration counted them,
-- so every fold is forgotten and folded again at the experiment's next refresh (the replaced
-- rollup rows are deleted with their month, see the README's rollup retention). The
-- experiments whose rollups were deleted stay final.
DELETE FROM results_folds;

-- +goose Down
SELECT 1;
