package clickhouse

import (
	"context"
	"fmt"

	"github.com/pressly/goose/v3/database"
)

// versionTable is goose's bookkeeping table inside the ingest database.
const versionTable = "goose_db_version"

// gooseStore is goose's own ClickHouse store with one change: it records a version with
// INSERT ... SELECT instead of INSERT ... VALUES ($1, $2). Through clickhouse-go's database/sql
// interface, the VALUES form never completes against ClickHouse 18.16 (the driver turns it into
// a native batch that the old server does not answer), while INSERT ... SELECT is a plain query
// that works on every version. Everything else is goose's clickhouse dialect unchanged.
type gooseStore struct {
	database.Store
}

func newGooseStore() (database.Store, error) {
	s, err := database.NewStore(database.DialectClickHouse, versionTable)
	if err != nil {
		return nil, err
	}
	return gooseStore{s}, nil
}

func (s gooseStore) Insert(ctx context.Context, db database.DBTxConn, req database.InsertRequest) error {
	q := fmt.Sprintf("INSERT INTO %s (version_id, is_applied) SELECT toInt64(%d), toUInt8(1)", versionTable, req.Version)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("insert version %d: %w", req.Version, err)
	}
	return nil
}
