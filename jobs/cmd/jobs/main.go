// Command jobs is Switchyard's jobs service: guardrails that roll bad releases back and alert
// Slack, stale-flag reports and digests, scheduled flag changes.
//
//	jobs [serve]   run the periodic jobs, the alert dispatcher and the API (default)
//	jobs migrate   apply the Postgres migrations (schema jobs) and exit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/app"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/logging"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if cmd != "serve" && cmd != "migrate" {
		return fmt.Errorf("unknown command %q (serve, migrate)", cmd)
	}
	var cfg app.Config
	if err := config.Load("jobs "+cmd, &cfg, args); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "jobs", cfg.LogLevel)
	if err != nil {
		return err
	}
	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if cmd == "migrate" {
		st, err := postgres.Open(startCtx, cfg.PGDSN, 2, true, log)
		if err != nil {
			return err
		}
		st.Close()
		log.Info("migrations applied")
		return nil
	}
	log.Info("starting", "config", cfg.Describe())
	a, err := app.New(startCtx, cfg, log, health.NewRegistry())
	if err != nil {
		return err
	}
	defer a.Close()
	return lifecycle.Run(ctx, log, cfg.ShutdownTimeout, a.Components()...)
}
