// Command resultsbench times experiment result refreshes at scale against ClickHouse:
//
//	resultsbench -exposures 10000000 -events 100000000 -days 14
//	resultsbench -database resultsbench_1795632060    # again, on the data of an earlier run
//	resultsbench -database resultsbench_1795632060 -refold-day -brief   # the incremental day's fold timed too, no comparisons
//	resultsbench -database resultsbench_1795632060 -refold-day -brief -steady   # the incremental refresh as a worker refreshing every few minutes sees it
//
// It creates (and afterwards drops) its own database, with ingest's schema applied by the
// ingest binary's migrate command (path given by -ingest-bin).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/switchyard-io/switchyard/stats/internal/resultsbench"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

func main() {
	var cfg resultsbench.Config
	addr := flag.String("clickhouse-addr", "127.0.0.1:19000", "ClickHouse native address")
	ingest := flag.String("ingest-bin", ".data/bin/ingest", "ingest binary (applies the schema)")
	keep := flag.Bool("keep", false, "keep the database afterwards")
	flag.Int64Var(&cfg.Exposures, "exposures", 10_000_000, "exposure rows")
	flag.Int64Var(&cfg.Events, "events", 100_000_000, "event rows")
	flag.IntVar(&cfg.Days, "days", 14, "days of data before the incremental day")
	flag.Int64Var(&metricsql.UnitsPerPass, "units-per-pass", metricsql.UnitsPerPass, "units one sums query aggregates at most (the stats service's -results-units-per-pass)")
	reuse := flag.String("database", "", "time the refreshes on this database of an earlier run instead of generating data (implies -keep)")
	flag.BoolVar(&cfg.RefoldDay, "refold-day", false, "with -database: fold the incremental day again, so that its fold is timed")
	flag.BoolVar(&cfg.Steady, "steady", false, "time the incremental refresh with its units base advanced through the day already, as a worker refreshing every few minutes has it")
	flag.BoolVar(&cfg.Brief, "brief", false, "leave out the comparisons (the sums grouped in ClickHouse, one sums query per metric, sums from raw events only)")
	flag.Int64Var(&metricsql.WorkerUnitsPerPass, "worker-units-per-pass", metricsql.WorkerUnitsPerPass, "units one pass of the sums grouped in the worker reads at most (the stats service's -results-worker-units-per-pass)")
	flag.BoolVar(&metricsql.GroupInWorker, "group-in-worker", metricsql.GroupInWorker, "group the sums per context in the worker (false: in ClickHouse)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		fail(err)
		fail(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	db := fmt.Sprintf("resultsbench_%d", time.Now().Unix())
	if *reuse != "" {
		db, cfg.Reuse, *keep = *reuse, true, true
	}
	// A kept database is migrated too: an earlier run's data may predate a schema change.
	migrate := time.Now()
	if out, err := exec.Command(*ingest, "migrate", "-clickhouse-addr", *addr, "-clickhouse-database", db, "-log-level", "warn").CombinedOutput(); err != nil {
		fail(fmt.Errorf("ingest migrate: %v\n%s", err, out))
	}
	if cfg.Reuse {
		fmt.Printf("migrated %s in %s\n", db, time.Since(migrate).Round(time.Millisecond))
	}
	fmt.Printf("database %s\n", db)
	conn, err := ch.Open(&ch.Options{Addr: []string{*addr}, Auth: ch.Auth{Database: db, Username: "default"},
		Settings: ch.Settings{"max_execution_time": 3600}, ReadTimeout: time.Hour})
	fail(err)
	defer conn.Close()
	if err := resultsbench.Run(context.Background(), conn, cfg, os.Stdout); err != nil {
		// Generating the data takes long: keep it for a re-run with -database.
		fail(fmt.Errorf("%w\n(the data is kept: re-run with -database %s, or DROP DATABASE %s)", err, db, db))
	}
	if !*keep {
		fail(conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "resultsbench:", err)
		os.Exit(1)
	}
}
