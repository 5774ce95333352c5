// Package clickhouse is the jobs service's read-only view of ClickHouse (native protocol
// only: clickhouse-go's HTTP protocol does not work with ClickHouse 18.16). The schema belongs
// to the ingest service; this package connects, and reads evaluation counts for stale-flag
// detection. Guardrail metrics are read through stats/metricsql on the same connection.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Options addresses the database.
type Options struct {
	Addr, Database, User, Password string
	// MaxOpenConns bounds the pool (default 8).
	MaxOpenConns int
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidDatabaseName reports whether name is a plain identifier.
func ValidDatabaseName(name string) bool { return identRE.MatchString(name) }

// Open connects and waits, up to ctx's deadline, until ClickHouse answers. The database is
// not created: the ingest service owns it.
func Open(ctx context.Context, o Options) (driver.Conn, error) {
	if !ValidDatabaseName(o.Database) {
		return nil, fmt.Errorf("clickhouse: invalid database name %q", o.Database)
	}
	conns := o.MaxOpenConns
	if conns <= 0 {
		conns = 8
	}
	user := o.User
	if user == "" {
		user = "default"
	}
	conn, err := ch.Open(&ch.Options{
		Protocol:     ch.Native,
		Addr:         []string{o.Addr},
		Auth:         ch.Auth{Database: o.Database, Username: user, Password: o.Password},
		DialTimeout:  5 * time.Second,
		ReadTimeout:  120 * time.Second,
		MaxOpenConns: conns,
		MaxIdleConns: conns,
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := conn.Ping(pctx)
		cancel()
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			conn.Close()
			return nil, fmt.Errorf("clickhouse did not answer at %s: %w", o.Addr, errors.Join(err, ctx.Err()))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// DayCount is one flag variation's evaluations on one UTC day.
type DayCount struct {
	Flag, Variation string
	Day             time.Time
	Evaluations     uint64
}

// EvaluationDays reads the daily evaluation counts of an environment since a day, from the
// evaluation_counts_daily rollup. (A summary delivered twice is counted twice there: stale
// detection asks only whether a flag was evaluated and which variations it served, which
// duplicates cannot change.)
func EvaluationDays(ctx context.Context, conn driver.Conn, environmentID string, since time.Time) ([]DayCount, error) {
	// Days travel as strings: converting a Date to a DateTime would apply the server's time zone.
	rows, err := conn.Query(ctx, `SELECT flag_key, variation_key, toString(day) AS d, sum(evaluations)
		FROM evaluation_counts_daily
		WHERE environment_id = ? AND day >= toDate(?)
		GROUP BY flag_key, variation_key, d`, environmentID, since.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: evaluation days: %w", err)
	}
	defer rows.Close()
	var out []DayCount
	for rows.Next() {
		var c DayCount
		var day string
		if err := rows.Scan(&c.Flag, &c.Variation, &day, &c.Evaluations); err != nil {
			return nil, err
		}
		if c.Day, err = time.Parse(time.DateOnly, day); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LastEvaluated reads, per flag, the last day it was evaluated in the environment before a
// day (evidence for flags without evaluations in the window).
func LastEvaluated(ctx context.Context, conn driver.Conn, environmentID string, before time.Time) (map[string]time.Time, error) {
	rows, err := conn.Query(ctx, `SELECT flag_key, toString(max(day)) FROM evaluation_counts_daily
		WHERE environment_id = ? AND day < toDate(?) AND evaluations > 0 GROUP BY flag_key`, environmentID, before.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: last evaluated: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var f, d string
		if err := rows.Scan(&f, &d); err != nil {
			return nil, err
		}
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, err
		}
		out[f] = day
	}
	return out, rows.Err()
}
