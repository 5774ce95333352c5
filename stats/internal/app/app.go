// Package app wires `stats serve`: the analysis API, and — when a database is configured — the
// experiment results workers and their API (snapshots in Postgres, sums from ClickHouse,
// experiment definitions and caller authorization from the flag service).
package app

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/pg"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	statshttp "github.com/switchyard-io/switchyard/stats/internal/http"
	"github.com/switchyard-io/switchyard/stats/internal/results"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// Config is `stats serve`'s configuration.
type Config struct {
	statshttp.Config
	FlagsvcURL         string
	FlagsvcTokenFile   string
	FlagsvcToken       string
	AllowAnonymous     bool
	PGDSN              string
	ClickHouseAddr     string
	ClickHouseDatabase string
	ClickHouseUser     string
	ClickHousePassword string
	ResultsInterval    time.Duration
	ResultsSettle      time.Duration
	ResultsLateWindow  time.Duration
	UnitsPerPass       int64
	WorkerUnitsPerPass int64
	ResultsConcurrency int
	ResultsTimeout     time.Duration
	ResultsKeepAll     time.Duration
	ResultsKeepHourly  time.Duration
	// ResultsRollupRetention: how long a finished experiment's ClickHouse rollups are kept
	// after its final results are settled (0: forever).
	ResultsRollupRetention time.Duration
	// ClickHouseMaxExecutionTime and ClickHouseMaxMemoryUsage are sent with every query
	// (max_execution_time, max_memory_usage; 0: the server's default), so one experiment's
	// queries cannot hold ClickHouse's memory or threads for everyone.
	ClickHouseMaxExecutionTime time.Duration
	ClickHouseMaxMemoryUsage   int64
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Config.RegisterFlags(fs)
	fs.StringVar(&c.FlagsvcURL, "flagsvc-url", "http://127.0.0.1:8080", "flag service URL (authorizes callers; experiment definitions)")
	fs.StringVar(&c.FlagsvcTokenFile, "flagsvc-token-file", "", "file holding the stats service's own flag service API token (re-read when used)")
	fs.StringVar(&c.FlagsvcToken, "flagsvc-token", "", "the stats service's own flag service API token (prefer -flagsvc-token-file)")
	fs.BoolVar(&c.AllowAnonymous, "allow-anonymous", false, "serve /v1/analyze and /v1/power without a flag service (no results API)")
	fs.StringVar(&c.PGDSN, "pg-dsn", "", "Postgres for result snapshots; empty disables the results workers")
	fs.StringVar(&c.ClickHouseAddr, "clickhouse-addr", "127.0.0.1:19000", "ClickHouse native-protocol address")
	fs.StringVar(&c.ClickHouseDatabase, "clickhouse-database", "switchyard", "ClickHouse database with the event tables")
	fs.StringVar(&c.ClickHouseUser, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&c.ClickHousePassword, "clickhouse-password", "", "ClickHouse password")
	fs.DurationVar(&c.ResultsInterval, "results-interval", 5*time.Minute, "how often running experiments' results are recomputed")
	fs.DurationVar(&c.ResultsSettle, "results-settle", time.Hour,
		"how long after midnight (UTC) a day is folded: the margin for events received before then to reach ClickHouse")
	fs.DurationVar(&c.ResultsLateWindow, "results-late-window", 168*time.Hour,
		"how long after its end a folded day is folded again when late events arrive (match ingest's -clock-skew-past)")
	fs.Int64Var(&c.UnitsPerPass, "results-units-per-pass", metricsql.UnitsPerPass,
		"units one results query aggregates at most; bigger experiments are computed in several passes (more: fewer, larger queries)")
	fs.Int64Var(&c.WorkerUnitsPerPass, "results-worker-units-per-pass", metricsql.WorkerUnitsPerPass,
		"units whose rows one pass of the sums added up in this service reads; two passes' rows are held at once, about 250 bytes a unit each for five metrics over two weeks (a 5M-unit refresh peaked at ~700 MB RSS with 500000; less: less memory, more reads)")
	fs.IntVar(&c.ResultsConcurrency, "results-concurrency", 4, "experiments refreshed at once (each holds a Postgres connection and runs its ClickHouse queries)")
	fs.DurationVar(&c.ResultsTimeout, "results-refresh-timeout", 15*time.Minute, "longest one experiment's refresh may take before it is cancelled and recorded as failed")
	fs.DurationVar(&c.ResultsKeepAll, "results-keep-all", 7*24*time.Hour,
		"keep every result snapshot this long; older ones are thinned to one per hour, then per day (0: keep every snapshot forever)")
	fs.DurationVar(&c.ResultsKeepHourly, "results-keep-hourly", 30*24*time.Hour, "keep one result snapshot per hour this long, one per day after that")
	fs.DurationVar(&c.ResultsRollupRetention, "results-rollup-retention", 30*24*time.Hour,
		"keep a stopped experiment's ClickHouse rollups this long after its final results are settled (the late window after its stop), then drop them (0: keep forever)")
	fs.DurationVar(&c.ClickHouseMaxExecutionTime, "clickhouse-max-execution-time", 10*time.Minute,
		"max_execution_time of every results query (whole seconds; 0: the server's default)")
	fs.Int64Var(&c.ClickHouseMaxMemoryUsage, "clickhouse-max-memory-usage", 4<<30,
		"max_memory_usage of every results query, in bytes (0: the server's default)")
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	switch {
	case c.FlagsvcURL == "" && !c.AllowAnonymous:
		return config.Invalid("flagsvc-url", "is required to authorize callers (or set -allow-anonymous for the analysis API alone)")
	case c.PGDSN != "" && c.FlagsvcURL == "":
		return config.Invalid("flagsvc-url", "the results workers read experiments from the flag service")
	case c.PGDSN != "" && c.FlagsvcTokenFile == "" && c.FlagsvcToken == "":
		return config.Invalid("flagsvc-token-file", "the results workers need the service's own API token")
	case c.ResultsInterval < 10*time.Second:
		return config.Invalid("results-interval", "must be at least 10s")
	case c.ResultsSettle < time.Minute:
		return config.Invalid("results-settle", "must be at least 1m")
	case c.ResultsLateWindow < time.Hour:
		return config.Invalid("results-late-window", "must be at least 1h")
	case c.UnitsPerPass < 1000:
		return config.Invalid("results-units-per-pass", "must be at least 1000")
	case c.WorkerUnitsPerPass < 1000:
		return config.Invalid("results-worker-units-per-pass", "must be at least 1000")
	case c.ResultsConcurrency < 1 || c.ResultsConcurrency > 64:
		return config.Invalid("results-concurrency", "must be between 1 and 64")
	case c.ResultsTimeout < 10*time.Second:
		return config.Invalid("results-refresh-timeout", "must be at least 10s")
	case c.ResultsKeepAll < 0 || (c.ResultsKeepAll > 0 && c.ResultsKeepAll < 24*time.Hour):
		return config.Invalid("results-keep-all", "must be 0 (keep every snapshot) or at least 24h")
	case c.ResultsKeepHourly < c.ResultsKeepAll:
		return config.Invalid("results-keep-hourly", "must not be shorter than -results-keep-all")
	case c.ResultsRollupRetention < 0:
		return config.Invalid("results-rollup-retention", "must be 0 (keep rollups forever) or positive")
	case c.ClickHouseMaxExecutionTime < 0 || (c.ClickHouseMaxExecutionTime > 0 && c.ClickHouseMaxExecutionTime < time.Second):
		return config.Invalid("clickhouse-max-execution-time", "must be 0 or at least 1s")
	case c.ClickHouseMaxMemoryUsage < 0:
		return config.Invalid("clickhouse-max-memory-usage", "must not be negative")
	}
	return nil
}

var _ config.Config = (*Config)(nil)

// App is the assembled service.
type App struct {
	HTTP       *fiber.App
	Components []lifecycle.Component
	close      []func()
}

// Close releases connections.
func (a *App) Close() {
	for i := len(a.close) - 1; i >= 0; i-- {
		a.close[i]()
	}
}

// New assembles the service.
func New(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) (*App, error) {
	a := &App{}
	checks := health.NewChecks()
	web := httpapi.New(httpapi.Options{Service: "stats", Logger: log, Registry: reg, BodyLimit: cfg.BodyLimit, AccessLog: cfg.AccessLog})
	health.Mount(web, checks, reg)
	var client *flagsvc.Client
	if cfg.FlagsvcURL != "" {
		client = flagsvc.New(cfg.FlagsvcURL, cfg.FlagsvcToken, cfg.FlagsvcTokenFile)
		web.Use("/v1", statshttp.RequireToken(&flagsvc.Authorizer{Client: client}))
	}
	statshttp.Mount(web, statshttp.NewMetrics(reg))
	if cfg.PGDSN != "" {
		// Each refresh running holds a connection (its advisory lock) and uses another; each
		// on-demand refresh waiting for its experiment or a slot (as many) may hold one.
		pool, err := pg.Connect(ctx, cfg.PGDSN, int32(max(10, 3*cfg.ResultsConcurrency+2)))
		if err != nil {
			return nil, err
		}
		a.close = append(a.close, pool.Close)
		store := &results.Store{Pool: pool}
		if err := store.Migrate(ctx, log); err != nil {
			a.Close()
			return nil, err
		}
		conn, err := openClickHouse(ctx, cfg)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.close = append(a.close, func() { conn.Close() })
		checks.Add("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
		checks.Add("clickhouse", func(ctx context.Context) error { return conn.Ping(ctx) })
		metricsql.UnitsPerPass, metricsql.WorkerUnitsPerPass = cfg.UnitsPerPass, cfg.WorkerUnitsPerPass
		worker := results.NewWorker(results.Config{Interval: cfg.ResultsInterval, Settle: cfg.ResultsSettle, LateWindow: cfg.ResultsLateWindow,
			Concurrency: cfg.ResultsConcurrency, RefreshTimeout: cfg.ResultsTimeout,
			Retention:       results.Retention{KeepAll: cfg.ResultsKeepAll, KeepHourly: cfg.ResultsKeepHourly},
			RollupRetention: cfg.ResultsRollupRetention}, store, conn, client, log, reg)
		statshttp.MountResults(web, &statshttp.ResultsService{Flags: client, Store: store, Worker: worker,
			Estimator: &results.Estimator{Worker: worker, CH: conn}})
		a.Components = append(a.Components, worker)
	}
	a.HTTP = web
	a.Components = append(a.Components, &httpapi.Server{App: web, Addr: cfg.HTTPAddr, ShutdownTimeout: cfg.ShutdownTimeout, Log: log})
	return a, nil
}

func openClickHouse(ctx context.Context, cfg Config) (driver.Conn, error) {
	// Both settings exist since long before 18.16, which enforces them (codes 159 and 241).
	settings := ch.Settings{}
	if s := int(cfg.ClickHouseMaxExecutionTime / time.Second); s > 0 {
		settings["max_execution_time"] = s
	}
	if cfg.ClickHouseMaxMemoryUsage > 0 {
		settings["max_memory_usage"] = int(cfg.ClickHouseMaxMemoryUsage)
	}
	conn, err := ch.Open(&ch.Options{Addr: []string{cfg.ClickHouseAddr}, Auth: ch.Auth{Database: cfg.ClickHouseDatabase,
		Username: cfg.ClickHouseUser, Password: cfg.ClickHousePassword}, DialTimeout: 5 * time.Second,
		MaxOpenConns: max(8, 2*cfg.ResultsConcurrency), Settings: settings})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = conn.Ping(ctx)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.ClickHouseAddr, err)
	}
	return conn, nil
}
