// Command dashboards serves Switchyard's web app and proxies the APIs it uses.
//
//	dashboards [serve] [flags]     on :8085; -h for flags
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/switchyard-io/switchyard/dashboards/internal/server"
	"github.com/switchyard-io/switchyard/dashboards/web"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/logging"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	} else if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		fmt.Fprintf(stderr, "dashboards: unknown command %q (the only command is serve, the default)\n", args[0])
		return 2
	}
	var cfg server.Config
	if err := config.Load("dashboards serve", &cfg, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "dashboards:", err)
		return 2
	}
	log, err := logging.New(stderr, "dashboards", cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(stderr, "dashboards:", err)
		return 2
	}
	dist, distErr := web.Dist()
	if distErr != nil {
		fmt.Fprintln(stderr, "dashboards: WARNING:", distErr)
	}
	reg := health.NewRegistry()
	app, err := server.New(server.Options{Config: cfg, Logger: log, Registry: reg, Dist: dist, DistErr: distErr})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	srv := &httpapi.Server{App: app, Addr: cfg.HTTPAddr, ShutdownTimeout: cfg.ShutdownTimeout, Log: log}
	if err := lifecycle.Run(ctx, log, cfg.ShutdownTimeout+2*time.Second, srv); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}
