package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/jobs/internal/chtest"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestRetentionJobWiring: with -event-retention the service runs an hourly leader job that
// drops old months of raw events from its ClickHouse database (real clock: a month of 2020
// goes, the current month stays); without it there is no such job.
func TestRetentionJobWiring(t *testing.T) {
	conn, chdb := chtest.Database(t)
	dsn := testenv.PostgresDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now().UTC()
	for _, at := range []time.Time{time.Date(2020, 1, 15, 12, 0, 0, 0, time.UTC), now} {
		if err := conn.Exec(ctx, `INSERT INTO exposures (environment_id, event_id, timestamp) SELECT 'env', generateUUIDv4(), toDateTime(?) FROM numbers(2)`,
			at.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, keep := range []string{"0", "840h"} {
		t.Run("event-retention="+keep, func(t *testing.T) {
			var cfg Config
			if err := config.Load("jobs", &cfg, []string{"-pg-dsn", dsn, "-clickhouse-addr", testenv.ClickHouseAddr(), "-clickhouse-database", chdb, "-event-retention", keep}); err != nil {
				t.Fatal(err)
			}
			a, err := New(ctx, cfg, log, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			var found bool
			for _, j := range a.Runner.Jobs {
				if j.Name == JobRetention {
					found = true
					if !j.Leader || j.Schedule != RetentionSchedule {
						t.Fatalf("retention job %+v: want a leader job on %q", j, RetentionSchedule)
					}
				}
			}
			if found != (keep != "0") {
				t.Fatalf("retention job registered: %t with -event-retention %s", found, keep)
			}
			current := fmt.Sprint(now.Year()*100 + int(now.Month()))
			if !found {
				if got := exposureMonths(t, conn); got != "202001 "+current {
					t.Fatalf("exposures months %q", got)
				}
				return
			}
			// Run the service's runner (it takes the job's leader lock and releases it when
			// stopped) and trigger the job as if its hour had come.
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Runner.Run(rctx) }()
			defer func() { stop(); <-done }()
			testenv.Eventually(t, 30*time.Second, "the retention job triggered", func() bool { return a.Runner.Trigger(JobRetention, now) })
			testenv.Eventually(t, 30*time.Second, "January 2020 dropped, "+current+" kept", func() bool {
				return exposureMonths(t, conn) == current
			})
		})
	}
}

// exposureMonths lists the months (yyyymm) that have exposures.
func exposureMonths(t *testing.T, conn driver.Conn) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT DISTINCT toString(toYYYYMM(timestamp)) AS m FROM exposures ORDER BY m")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var months []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		months = append(months, m)
	}
	return strings.Join(months, " ")
}
