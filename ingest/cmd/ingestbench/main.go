// Command ingestbench measures the event pipeline end to end on the local stack: it starts an
// ingest process (collector + writer) with its own topics and ClickHouse database, drives it
// with HTTP batches like SDKs send (≈200-byte events, 100 per request), and reports:
//
//	-mode throughput  sustained events/s from HTTP to queryable in ClickHouse
//	-mode latency     p50/p99 from "accepted" (202) to queryable at a fixed rate (-rate)
//	-mode overload    collector RSS and answers while the Kafka broker is stopped, then no loss
//	-mode all         the three, one after another
//
// It also samples the CPU used by each process (ingest, this load generator, Kafka,
// ClickHouse) so the report says where the time goes. Run it with `make bench-ingest`
// (or `cd ingest && go run ./cmd/ingestbench -mode all`); BENCHMARKS.md records results.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	mode := flag.String("mode", "all", "throughput, latency, overload or all")
	flag.StringVar(&cfg.IngestBin, "ingest-bin", "", "ingest binary (default: go build ./cmd/ingest into a temporary directory)")
	flag.StringVar(&cfg.Brokers, "kafka-brokers", cfg.Brokers, "Kafka brokers")
	flag.StringVar(&cfg.ClickHouseAddr, "clickhouse-addr", cfg.ClickHouseAddr, "ClickHouse native address")
	flag.StringVar(&cfg.RepoRoot, "repo-root", cfg.RepoRoot, "repository root (for deploy/local scripts)")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "load duration per mode")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent HTTP senders")
	flag.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "events per request")
	flag.Float64Var(&cfg.Rate, "rate", cfg.Rate, "events/s for the latency mode")
	flag.BoolVar(&cfg.Gzip, "gzip", cfg.Gzip, "gzip request bodies")
	flag.DurationVar(&cfg.OutageFor, "outage", cfg.OutageFor, "how long Kafka stays stopped in the overload mode")
	flag.Func("env", "extra SWITCHYARD_*=value for the ingest process (repeatable)", func(v string) error {
		cfg.ExtraEnv = append(cfg.ExtraEnv, v)
		return nil
	})
	flag.Parse()
	ctx := context.Background()
	run := map[string]func(context.Context, bench.Config) (string, error){
		"throughput": bench.Throughput,
		"latency":    bench.Latency,
		"overload":   bench.Overload,
	}
	modes := []string{*mode}
	if *mode == "all" {
		modes = []string{"throughput", "latency", "overload"}
	}
	fmt.Println(bench.MachineSummary())
	for _, m := range modes {
		fn, ok := run[m]
		if !ok {
			fmt.Fprintf(os.Stderr, "ingestbench: unknown mode %q\n", m)
			os.Exit(2)
		}
		start := time.Now()
		report, err := fn(ctx, cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ingestbench: %s: %v\n", m, err)
			os.Exit(1)
		}
		fmt.Printf("== %s (%s)\n%s\n", m, time.Since(start).Round(time.Second), report)
	}
}
