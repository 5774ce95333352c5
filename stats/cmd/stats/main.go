// Command stats is Switchyard's statistics engine on the command line and as a service.
//
//	stats analyze   < request.json > response.json   (shared/design/STATS.md §11)
//	stats power     < plan.json    > power.json
//	stats serve     [flags]                           POST /v1/analyze, POST /v1/power on :8083
//
// An invalid request exits with status 2 and a JSON error on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/logging"
	"github.com/switchyard-io/switchyard/stats/internal/app"
	"github.com/switchyard-io/switchyard/stats/internal/cli"
)

const usage = `usage: stats <command>

commands:
  analyze   read an analysis request (JSON) on stdin, write the results on stdout
  power     read a power request (JSON) on stdin, write power and MDE on stdout
  serve     run the HTTP API (POST /v1/analyze, POST /v1/power); -h for flags
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.ExitInvalid
	}
	switch args[0] {
	case "analyze":
		return cli.Analyze(stdin, stdout, stderr)
	case "power":
		return cli.Power(stdin, stdout, stderr)
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return cli.ExitOK
	}
	fmt.Fprintf(stderr, "stats: unknown command %q\n\n%s", args[0], usage)
	return cli.ExitInvalid
}

// serve runs the HTTP API (and the results workers when configured) until SIGTERM/SIGINT.
func serve(ctx context.Context, args []string, stderr io.Writer) int {
	var cfg app.Config
	if err := config.Load("stats serve", &cfg, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cli.ExitOK
		}
		fmt.Fprintln(stderr, "stats:", err)
		return cli.ExitInvalid
	}
	log, err := logging.New(stderr, "stats", cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(stderr, "stats:", err)
		return cli.ExitInvalid
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	a, err := app.New(startCtx, cfg, log, health.NewRegistry())
	if err != nil {
		log.Error("start failed", "err", err)
		return cli.ExitFailure
	}
	defer a.Close()
	if err := lifecycle.Run(ctx, log, cfg.ShutdownTimeout+2*time.Second, a.Components...); err != nil {
		log.Error("stopped", "err", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}
