// Command ingest runs Switchyard's event pipeline: the HTTP collector (SDK events → Kafka) and
// the ClickHouse writer (Kafka → ClickHouse).
//
//	ingest [serve] [flags]   run the collector and the writer (-collector=false / -writer=false to run one)
//	ingest migrate [flags]   apply the ClickHouse migrations and exit
//
// Every flag can be set with its SWITCHYARD_* environment variable; see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/logging"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "migrate") {
		cmd, args = args[0], args[1:]
	}
	cfg := app.Default()
	if err := config.Load("ingest "+cmd, &cfg, args); err != nil {
		return err
	}
	log, err := logging.New(os.Stdout, "ingest", cfg.LogLevel)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if cmd == "migrate" {
		mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		v, err := app.Migrate(mctx, cfg, log)
		if err != nil {
			return err
		}
		log.Info("clickhouse schema up to date", "version", v)
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	svc, err := app.New(sctx, cfg, log, app.Options{})
	cancel()
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
