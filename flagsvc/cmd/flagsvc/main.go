// Command flagsvc is the Switchyard flag service.
//
//	flagsvc [serve]     run the API and the ruleset publisher (default)
//	flagsvc migrate     apply database migrations and exit
//	flagsvc bootstrap   create the organization and its first owner; write an owner API token
//	flagsvc seed        create the demo project through the API (used by `make up`)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/app"
	"github.com/switchyard-io/switchyard/flagsvc/internal/demo"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/logging"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "flagsvc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var cfg app.Config
	var extra config.Config = &cfg
	var boot app.BootstrapConfig
	var seed demo.Config
	switch cmd {
	case "serve", "migrate":
	case "bootstrap":
		boot.Config = &cfg
		extra = &boot
	case "seed":
		extra = &seed
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, bootstrap, seed)", cmd)
	}
	if err := config.Load("flagsvc "+cmd, extra, args); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "flagsvc", cfg.LogLevel)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if cmd == "seed" {
		return demo.Seed(ctx, seed, os.Stdout)
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	a, err := app.New(startCtx, cfg, log, health.NewRegistry())
	if err != nil {
		return err
	}
	defer a.Close()
	switch cmd {
	case "migrate":
		log.Info("migrations applied")
		return nil
	case "bootstrap":
		return app.Bootstrap(startCtx, a, boot, os.Stdout)
	}
	return lifecycle.Run(ctx, log, cfg.ShutdownTimeout, a.Components()...)
}
