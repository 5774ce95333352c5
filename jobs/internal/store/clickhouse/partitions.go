package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/jobs/internal/retention"
)

// Partitions lists and drops monthly partitions of the raw event tables for the event
// retention (retention.Store). It is the one place the jobs service writes to ClickHouse.
type Partitions struct {
	Conn driver.Conn
}

// Partitions implements retention.Store: the active parts of the tables in the connection's
// database, summed per partition.
func (s Partitions) Partitions(ctx context.Context, tables []string) ([]retention.Partition, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	q := `SELECT table, partition, sum(rows), sum(bytes_on_disk) FROM system.parts
		WHERE database = currentDatabase() AND active AND table IN (?` + strings.Repeat(", ?", len(tables)-1) + `)
		GROUP BY table, partition ORDER BY table, partition`
	args := make([]any, len(tables))
	for i, t := range tables {
		args[i] = t
	}
	rows, err := s.Conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: list partitions: %w", err)
	}
	defer rows.Close()
	var out []retention.Partition
	for rows.Next() {
		var p retention.Partition
		if err := rows.Scan(&p.Table, &p.Partition, &p.Rows, &p.Bytes); err != nil {
			return nil, fmt.Errorf("clickhouse: list partitions: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Month implements retention.Store: the server's toYYYYMM of t, so the month is cut in the
// time zone the tables' partition keys (toYYYYMM of a DateTime column) use.
func (s Partitions) Month(ctx context.Context, t time.Time) (int, error) {
	var m uint32
	if err := s.Conn.QueryRow(ctx, `SELECT toYYYYMM(toDateTime(?))`, t.Unix()).Scan(&m); err != nil {
		return 0, fmt.Errorf("clickhouse: month of %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return int(m), nil
}

// DropPartition implements retention.Store. The table must be one of retention.Tables (a
// table name cannot be a query parameter); the month is bound as a number, the partition
// expression ClickHouse 18.16 accepts for PARTITION BY toYYYYMM(…): DROP PARTITION 202603.
// Dropping a partition that no longer exists is not an error.
func (s Partitions) DropPartition(ctx context.Context, table string, month int) error {
	if !slices.Contains(retention.Tables, table) {
		return fmt.Errorf("clickhouse: %q is not a raw event table", table)
	}
	if month < 197001 || month > 999912 || month%100 < 1 || month%100 > 12 {
		return fmt.Errorf("clickhouse: %d is not a month (yyyymm)", month)
	}
	if err := s.Conn.Exec(ctx, "ALTER TABLE "+table+" DROP PARTITION ?", uint32(month)); err != nil {
		return fmt.Errorf("clickhouse: drop partition %d of %s: %w", month, table, err)
	}
	return nil
}
