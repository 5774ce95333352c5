// Command evalrelay is the Switchyard evaluation relay: it reads rulesets from Kafka and serves
// SDKs (ruleset polling, SSE streaming, remote evaluation, OpenFeature OFREP).
//
//	evalrelay [serve]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/switchyard-io/switchyard/evalrelay/internal/app"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/logging"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "evalrelay:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	var cfg app.Config
	if err := config.Load("evalrelay", &cfg, args); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "evalrelay", cfg.LogLevel)
	if err != nil {
		return err
	}
	a, err := app.New(cfg, log, health.NewRegistry())
	if err != nil {
		return err
	}
	return lifecycle.Run(context.Background(), log, cfg.ShutdownTimeout, a.Components()...)
}
