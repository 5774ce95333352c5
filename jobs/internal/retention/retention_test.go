package retention_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/jobs/internal/chtest"
	"github.com/switchyard-io/switchyard/jobs/internal/retention"
	"github.com/switchyard-io/switchyard/jobs/internal/store/clickhouse"
)

func TestDroppable(t *testing.T) {
	parts := []retention.Partition{
		{Table: "tracks", Partition: "202608"}, {Table: "tracks", Partition: "202609"},
		{Table: "tracks", Partition: "202610"}, {Table: "tracks", Partition: "202611"},
		{Table: "tracks", Partition: "tuple()"}, {Table: "tracks", Partition: "2026"},
		{Table: "tracks", Partition: "202613"}, {Table: "tracks", Partition: "202600"}, {Table: "tracks", Partition: "20260a"},
	}
	cases := []struct {
		name   string
		cutoff int
		want   string
	}{
		{"the cut-off's month and later are kept", 202610, "202608 202609"},
		{"first month", 202608, ""},
		{"everything monthly before", 202701, "202608 202609 202610 202611"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range retention.Droppable(parts, tc.cutoff) {
				got = append(got, p.Partition)
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("droppable before %d: %v, want %q", tc.cutoff, got, tc.want)
			}
		})
	}
}

// months seeded: June to December 2026; "now" is early November, so December is in the future.
var months = []int{202606, 202607, 202608, 202609, 202610, 202611, 202612}

// seed inserts, into each raw event table, k+1 rows in the k-th month (mid-month, noon, in the
// server's time zone so the rows land in that month's partition whatever the zone).
func seed(t *testing.T, conn driver.Conn, loc *time.Location) {
	t.Helper()
	ctx := context.Background()
	for k, m := range months {
		at := time.Date(m/100, time.Month(m%100), 15, 12, 0, 0, 0, loc).Unix()
		n := k + 1
		for _, q := range []string{
			`INSERT INTO exposures (environment_id, event_id, timestamp, flag_key, context_key)
				SELECT 'env', generateUUIDv4(), toDateTime(?), 'flag', toString(number) FROM numbers(?)`,
			`INSERT INTO tracks (environment_id, event_id, timestamp, event_key, context_key)
				SELECT 'env', generateUUIDv4(), toDateTime(?), 'purchase', toString(number) FROM numbers(?)`,
			`INSERT INTO evaluation_summaries (environment_id, event_id, window_start, flag_key, count)
				SELECT 'env', generateUUIDv4(), toDateTime(?), 'flag', 1 FROM numbers(?)`,
		} {
			if err := conn.Exec(ctx, q, at, n); err != nil {
				t.Fatalf("seed %d: %v\n%s", m, err, q)
			}
		}
	}
}

// monthsLeft reads, per table, the months that still have rows (and checks the active
// partitions say the same).
func monthsLeft(t *testing.T, conn driver.Conn) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, table := range retention.Tables {
		col := "timestamp"
		if table == "evaluation_summaries" {
			col = "window_start"
		}
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT toYYYYMM(%s) AS m, count() FROM %s GROUP BY m ORDER BY m", col, table))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var m uint32
			var n uint64
			if err := rows.Scan(&m, &n); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprint(m))
		}
		rows.Close()
		out[table] = strings.Join(got, " ")
	}
	parts, err := clickhouse.Partitions{Conn: conn}.Partitions(ctx, retention.Tables)
	if err != nil {
		t.Fatal(err)
	}
	fromParts := map[string][]string{}
	for _, p := range parts {
		fromParts[p.Table] = append(fromParts[p.Table], p.Partition)
	}
	for table, want := range out {
		if got := strings.Join(fromParts[table], " "); got != want {
			t.Fatalf("%s: active partitions %q, months with rows %q", table, got, want)
		}
	}
	return out
}

func serverLocation(t *testing.T, conn driver.Conn) *time.Location {
	t.Helper()
	var tz string
	if err := conn.QueryRow(context.Background(), "SELECT timezone()").Scan(&tz); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatalf("server time zone %q: %v", tz, err)
	}
	return loc
}

func wantLeft(t *testing.T, conn driver.Conn, want string) {
	t.Helper()
	for table, got := range monthsLeft(t, conn) {
		if got != want {
			t.Fatalf("%s keeps months %q, want %q", table, got, want)
		}
	}
}

// TestRetentionDropsWholeOldMonths: against the real ClickHouse, with a fixed clock, months
// whose whole span is before now − retention are dropped from the three raw event tables; the
// month straddling the cut-off (even when the cut-off is one second before its end), the
// current and a future month are kept; retention 0 and a second run drop nothing.
func TestRetentionDropsWholeOldMonths(t *testing.T) {
	conn, _ := chtest.Database(t)
	loc := serverLocation(t, conn)
	seed(t, conn, loc)
	all := "202606 202607 202608 202609 202610 202611 202612"
	wantLeft(t, conn, all)

	ctx := context.Background()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	keep := 35 * 24 * time.Hour
	r := retention.New(clickhouse.Partitions{Conn: conn}, 0, slog.New(slog.NewJSONHandler(&logs, nil)), reg)
	octoberStarts := time.Date(2026, 10, 1, 0, 0, 0, 0, loc)

	// Retention 0 keeps everything, whatever the clock.
	r.Now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	if res, err := r.Run(ctx); err != nil || len(res.Dropped) != 0 {
		t.Fatalf("retention 0: dropped %v, err %v", res.Dropped, err)
	}
	wantLeft(t, conn, all)

	// The cut-off one second before October: September straddles it and is kept.
	r.Retention = keep
	r.Now = func() time.Time { return octoberStarts.Add(keep - time.Second) }
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.CutoffMonth != 202609 || len(res.Dropped) != 9 {
		t.Fatalf("cut-off month %d, dropped %+v; want 202609 and June–August of 3 tables", res.CutoffMonth, res.Dropped)
	}
	for _, p := range res.Dropped {
		m, _ := p.Month()
		if wantRows := uint64(m - 202606 + 1); p.Rows != wantRows || p.Bytes == 0 {
			t.Fatalf("dropped %+v: want %d rows (from system.parts) and its bytes", p, wantRows)
		}
	}
	wantLeft(t, conn, "202609 202610 202611 202612")

	// The cut-off exactly at October's start: all of September is older; October is kept.
	r.Now = func() time.Time { return octoberStarts.Add(keep) }
	if res, err = r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if res.CutoffMonth != 202610 || len(res.Dropped) != 3 {
		t.Fatalf("cut-off month %d, dropped %+v; want 202610 and September of 3 tables", res.CutoffMonth, res.Dropped)
	}
	wantLeft(t, conn, "202610 202611 202612")

	// A second run at the same time is a no-op.
	if res, err = r.Run(ctx); err != nil || len(res.Dropped) != 0 || len(res.Failed) != 0 {
		t.Fatalf("second run: dropped %v, failed %v, err %v", res.Dropped, res.Failed, err)
	}
	wantLeft(t, conn, "202610 202611 202612")

	for _, table := range retention.Tables {
		if n := counter(t, reg, "jobs_retention_partitions_dropped_total", table); n != 4 {
			t.Fatalf("jobs_retention_partitions_dropped_total{table=%q} = %v, want 4", table, n)
		}
	}
	if n := counter(t, reg, "jobs_retention_errors_total", ""); n != 0 {
		t.Fatalf("jobs_retention_errors_total = %v", n)
	}
	// The log says what was dropped: table, month, rows and bytes.
	for _, want := range []string{`"table":"exposures","month":"2026-06","rows":1,"bytes":`,
		`"table":"evaluation_summaries","month":"2026-09","rows":4,"bytes":`} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// failingDrops fails the first drops of one table (a ClickHouse refusal, a timeout).
type failingDrops struct {
	retention.Store
	table string
	fails int
}

func (f *failingDrops) DropPartition(ctx context.Context, table string, month int) error {
	if table == f.table && f.fails > 0 {
		f.fails--
		return errors.New("injected failure")
	}
	return f.Store.DropPartition(ctx, table, month)
}

// TestRetentionFailureIsCountedAndRetried: a failed drop is logged and counted, the other
// tables are still cleaned, and the next run drops what was left.
func TestRetentionFailureIsCountedAndRetried(t *testing.T) {
	conn, _ := chtest.Database(t)
	loc := serverLocation(t, conn)
	seed(t, conn, loc)
	ctx := context.Background()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	store := &failingDrops{Store: clickhouse.Partitions{Conn: conn}, table: "tracks", fails: 1}
	keep := 40 * 24 * time.Hour
	r := retention.New(store, keep, slog.New(slog.NewJSONHandler(&logs, nil)), reg)
	r.Now = func() time.Time { return time.Date(2026, 9, 1, 0, 0, 0, 0, loc).Add(keep) } // cut-off: September 1st

	res, err := r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "tracks") {
		t.Fatalf("err = %v, want the failed drop of tracks", err)
	}
	if len(res.Failed) != 1 || len(res.Dropped) != 8 {
		t.Fatalf("failed %+v, dropped %+v; want one tracks month failed, 8 dropped", res.Failed, res.Dropped)
	}
	if n := counter(t, reg, "jobs_retention_errors_total", ""); n != 1 {
		t.Fatalf("jobs_retention_errors_total = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"could not drop a month of raw events; the next run retries","table":"tracks"`) {
		t.Fatalf("the failure is not logged:\n%s", logs.String())
	}
	left := monthsLeft(t, conn)
	if left["exposures"] != "202609 202610 202611 202612" || left["evaluation_summaries"] != left["exposures"] ||
		left["tracks"] != "202606 202609 202610 202611 202612" {
		t.Fatalf("after a failed drop: %v", left)
	}

	if res, err = r.Run(ctx); err != nil || len(res.Dropped) != 1 {
		t.Fatalf("retry: dropped %+v, err %v; want the month left behind", res.Dropped, err)
	}
	wantLeft(t, conn, "202609 202610 202611 202612")
	if n := counter(t, reg, "jobs_retention_errors_total", ""); n != 1 {
		t.Fatalf("jobs_retention_errors_total = %v after a good run, want still 1", n)
	}
}

// TestDropPartitionRefusesOtherTables: the only ClickHouse write of the service cannot be
// pointed at an aggregate or a rollup.
func TestDropPartitionRefusesOtherTables(t *testing.T) {
	conn, _ := chtest.Database(t)
	s := clickhouse.Partitions{Conn: conn}
	for _, table := range []string{"experiment_metric_rollups", "evaluation_counts_daily", "exposures; DROP TABLE tracks"} {
		if err := s.DropPartition(context.Background(), table, 202601); err == nil {
			t.Fatalf("dropping a partition of %q was accepted", table)
		}
	}
	if err := s.DropPartition(context.Background(), "tracks", 202613); err == nil {
		t.Fatal("month 202613 was accepted")
	}
}

// counter sums a counter's series gathered from reg; with table set, only that table's.
func counter(t *testing.T, reg *prometheus.Registry, name, table string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := table == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == table {
					match = true
				}
			}
			if match {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
