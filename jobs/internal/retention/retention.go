// Package retention deletes old raw events: whole monthly partitions of the ingest service's
// raw event tables (exposures, tracks, evaluation_summaries) whose entire month lies before
// now minus the retention. The month that straddles that cut-off, and any later month, are
// kept; aggregates and rollups live in other tables and are never touched.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Tables are the raw event tables, each partitioned by toYYYYMM of one DateTime column
// (exposures and tracks by timestamp, evaluation_summaries by window_start).
var Tables = []string{"exposures", "tracks", "evaluation_summaries"}

// MinRetention is the shortest retention accepted. The readers of raw events need:
//   - the stats results workers fold a day's tracks and exposures, and fold it again when late
//     events arrive up to the late window (168 h) plus the settle margin (1 h) after the day;
//   - a CUPED covariate reads the metric's pre-period (7 days by default) before the cohort's
//     day, again until the day's late window has passed: 7 d + 169 h ≈ 15 days;
//   - experiment planning reads the flag's last 14 days of exposures and tracks;
//   - the guardrail sweep reads an experiment's raw events since its start: 35 days keeps
//     whole typical 2–4-week experiments, with a week to spare.
//
// Longer CUPED pre-periods (up to 90 days) need the pre-period plus 8 days; see the README.
const MinRetention = 35 * 24 * time.Hour

// Partition is one active partition of a table, as system.parts reports it.
type Partition struct {
	Table string
	// Partition is the partition value as system.parts prints it: "202603" for March 2026.
	Partition string
	Rows      uint64
	Bytes     uint64
}

// Month is the partition's month (yyyymm) and whether the partition is a month at all.
func (p Partition) Month() (int, bool) {
	if len(p.Partition) != 6 {
		return 0, false
	}
	m, err := strconv.Atoi(p.Partition)
	if err != nil || m%100 < 1 || m%100 > 12 || m/100 < 1970 {
		return 0, false
	}
	return m, true
}

// Store reads partitions and drops them. Months are computed by the database itself, in the
// time zone its partition keys use.
type Store interface {
	// Partitions lists the active partitions of the tables in the current database.
	Partitions(ctx context.Context, tables []string) ([]Partition, error)
	// Month is the database's toYYYYMM of t.
	Month(ctx context.Context, t time.Time) (int, error)
	// DropPartition drops one monthly partition of a table.
	DropPartition(ctx context.Context, table string, month int) error
}

// Droppable returns the monthly partitions strictly before cutoffMonth (yyyymm): the months
// that ended at or before the cut-off. Partitions that are not months are never returned.
func Droppable(parts []Partition, cutoffMonth int) []Partition {
	var out []Partition
	for _, p := range parts {
		if m, ok := p.Month(); ok && m < cutoffMonth {
			out = append(out, p)
		}
	}
	return out
}

// Retainer drops the raw event partitions older than Retention.
type Retainer struct {
	Store Store
	// Retention: raw events are kept at least this long; 0 keeps them forever.
	Retention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger

	dropped      *prometheus.CounterVec
	droppedBytes *prometheus.CounterVec
	errs         prometheus.Counter
}

// New returns a Retainer registering its metrics on reg (when not nil).
func New(store Store, retention time.Duration, log *slog.Logger, reg prometheus.Registerer) *Retainer {
	r := &Retainer{Store: store, Retention: retention, Now: time.Now, Log: log,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_retention_partitions_dropped_total",
			Help: "Monthly partitions of raw event tables dropped by the event retention, by table."}, []string{"table"}),
		droppedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_retention_bytes_dropped_total",
			Help: "Bytes on disk of the raw event partitions dropped, by table."}, []string{"table"}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobs_retention_errors_total",
			Help: "Failed event retention steps (listing partitions or dropping one); the next run retries."}),
	}
	if reg != nil {
		reg.MustRegister(r.dropped, r.droppedBytes, r.errs)
	}
	return r
}

// Result is what one run did.
type Result struct {
	// CutoffMonth is the month (yyyymm) that straddles now − Retention: it and later months
	// are kept (0 when retention is off).
	CutoffMonth int
	Dropped     []Partition
	Failed      []Partition
}

// Run drops every monthly partition of Tables whose whole month is older than now − Retention.
// It is idempotent: a second run finds nothing more to drop. A failed drop is logged and
// counted, the other partitions are still dropped, and the error is returned; the next run
// tries again. With Retention 0 it does nothing.
func (r *Retainer) Run(ctx context.Context) (Result, error) {
	var res Result
	if r.Retention <= 0 {
		return res, nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	cutoff := now().Add(-r.Retention)
	month, err := r.Store.Month(ctx, cutoff)
	if err != nil {
		r.errs.Inc()
		return res, fmt.Errorf("retention: month of the cut-off: %w", err)
	}
	res.CutoffMonth = month
	parts, err := r.Store.Partitions(ctx, Tables)
	if err != nil {
		r.errs.Inc()
		return res, fmt.Errorf("retention: list partitions: %w", err)
	}
	var errs []error
	for _, p := range Droppable(parts, month) {
		m, _ := p.Month()
		if err := r.Store.DropPartition(ctx, p.Table, m); err != nil {
			if ctx.Err() != nil {
				return res, errors.Join(append(errs, ctx.Err())...)
			}
			r.errs.Inc()
			res.Failed = append(res.Failed, p)
			r.Log.Error("could not drop a month of raw events; the next run retries", "table", p.Table, "month", monthName(m),
				"rows", p.Rows, "bytes", p.Bytes, "err", err)
			errs = append(errs, fmt.Errorf("retention: drop %s partition %d: %w", p.Table, m, err))
			continue
		}
		r.dropped.WithLabelValues(p.Table).Inc()
		r.droppedBytes.WithLabelValues(p.Table).Add(float64(p.Bytes))
		res.Dropped = append(res.Dropped, p)
		r.Log.Info("dropped a month of raw events", "table", p.Table, "month", monthName(m), "rows", p.Rows, "bytes", p.Bytes,
			"retention", r.Retention.String(), "cutoff", cutoff.UTC().Format(time.RFC3339))
	}
	return res, errors.Join(errs...)
}

func monthName(m int) string { return fmt.Sprintf("%04d-%02d", m/100, m%100) }
