-- +goose Up
-- A units base is advanced in place (stats/metricsql AdvanceUnits): new contexts and revisions
-- of changed ones are appended to its partition. units counts its contexts' first rows and
-- revisions its revision rows; both are checked against the partition before it is read. A
-- replica of a version before revisions checks units against every row of the partition, so
-- it finds a revised base not what was recorded and builds a new one from every state rather
-- than reading revisions as contexts of their own (a rolling upgrade stays exact); the base it
-- records (revisions left as they were) is in turn rebuilt by the next replica of this version.
ALTER TABLE results_unit_bases ADD COLUMN revisions bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE results_unit_bases DROP COLUMN revisions;
