-- +goose Up
-- Each folded day records the id of the ClickHouse fold whose rows count (ClickHouse migration
-- 00004, experiment_metric_rollups). The days folded before this migration wrote into the
-- dropped experiment_metric_days table, so they are forgotten and folded again.
DELETE FROM results_folds;
ALTER TABLE results_folds ADD COLUMN fold_id bigint NOT NULL;

-- +goose Down
ALTER TABLE results_folds DROP COLUMN fold_id;
