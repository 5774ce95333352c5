// Package app wires the evaluation relay: configuration, the ruleset store (with its disk
// cache), the Kafka feed, and the HTTP API, run as lifecycle components.
package app

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/pprof"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/evalrelay/internal/api"
	"github.com/switchyard-io/switchyard/evalrelay/internal/feed"
	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/logging"
)

// Config is the relay's configuration; every field has a flag and a SWITCHYARD_* variable.
type Config struct {
	HTTPAddr        string
	KafkaBrokers    string
	RulesetTopic    string
	StateDir        string
	Heartbeat       time.Duration
	ServerRate      float64
	ClientRate      float64
	CORSOrigins     string
	ShutdownTimeout time.Duration
	LogLevel        string
	AccessLog       bool
	Pprof           bool
	NoPatches       bool
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8081", "HTTP listen address")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "127.0.0.1:19092", "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&c.RulesetTopic, "rulesets-topic", kafka.TopicRulesets, "compacted topic the flag service publishes rulesets to")
	fs.StringVar(&c.StateDir, "state-dir", ".data/state/evalrelay", "directory for the on-disk ruleset cache (boot without Kafka)")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 15*time.Second, "interval of SSE heartbeats")
	fs.Float64Var(&c.ServerRate, "server-key-rate", 50000, "requests per second allowed per server SDK key (0: unlimited)")
	fs.Float64Var(&c.ClientRate, "client-key-rate", 20000, "requests per second allowed per client SDK key (0: unlimited)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "*", "origins allowed to call the client endpoints (comma-separated, * for any)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to drain on shutdown")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.AccessLog, "access-log", false, "log every request")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go profiles at /debug/pprof/ (for load tests)")
	fs.BoolVar(&c.NoPatches, "no-patches", false, "stream every change as the whole ruleset, even to SDKs that ask for patches")
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	switch {
	case c.HTTPAddr == "":
		return config.Invalid("http-addr", "is required")
	case len(kafka.SplitBrokers(c.KafkaBrokers)) == 0:
		return config.Invalid("kafka-brokers", "at least one broker is required")
	case c.RulesetTopic == "":
		return config.Invalid("rulesets-topic", "is required")
	case c.Heartbeat < time.Second || c.Heartbeat > 15*time.Second:
		return config.Invalid("heartbeat", "must be between 1s and 15s (SDKs expect one at least every 15 s)")
	case c.ServerRate < 0 || c.ClientRate < 0:
		return config.Invalid("server-key-rate", "rates cannot be negative")
	case c.CORSOrigins == "":
		return config.Invalid("cors-origins", "is required (use * for any origin)")
	case c.ShutdownTimeout <= 0:
		return config.Invalid("shutdown-timeout", "must be positive")
	case !logging.ValidLevel(c.LogLevel):
		return config.Invalid("log-level", "must be debug, info, warn or error")
	}
	return nil
}

// App is the assembled relay.
type App struct {
	Config Config
	Log    *slog.Logger
	Store  *rulesets.Store
	Feed   *feed.Feed
	HTTP   *fiber.App
}

// New assembles the relay and loads the disk cache (marked stale until Kafka is read).
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry) (*App, error) {
	store := rulesets.New(cfg.StateDir)
	n, err := store.LoadDisk()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		store.SetStale(true)
		log.Info("loaded rulesets from disk; stale until Kafka is read", "environments", n)
	}
	f := feed.New(feed.Config{Brokers: kafka.SplitBrokers(cfg.KafkaBrokers), Topic: cfg.RulesetTopic}, store, log, reg)
	checks := health.NewChecks()
	checks.Add("rulesets", func(context.Context) error {
		// Ready once the topic is read to its end, or at once with a disk cache (stale until
		// then): a relay that has read only part of the topic would turn away keys of the
		// environments it has not read yet.
		if n > 0 || f.CaughtUp() {
			return nil
		}
		return errors.New("no rulesets yet: the ruleset topic not read to its end and no disk cache")
	})
	web := httpapi.New(httpapi.Options{Service: "evalrelay", Logger: log, Registry: reg, AccessLog: cfg.AccessLog, BodyLimit: 1 << 20})
	health.Mount(web, checks, reg)
	if cfg.Pprof {
		web.Use(pprof.New())
	}
	api.Mount(web, api.Config{Heartbeat: cfg.Heartbeat, ServerRate: cfg.ServerRate, ClientRate: cfg.ClientRate, CORSOrigins: cfg.CORSOrigins,
		NoPatches: cfg.NoPatches, CaughtUp: f.CaughtUp}, store, reg)
	return &App{Config: cfg, Log: log, Store: store, Feed: f, HTTP: web}, nil
}

// Components are the long-running parts: the feed, the HTTP server, and the stream closer
// that ends open streams at shutdown so the server can drain.
func (a *App) Components() []lifecycle.Component {
	return []lifecycle.Component{
		a.Feed,
		a.Store,
		&httpapi.Server{App: a.HTTP, Addr: a.Config.HTTPAddr, ShutdownTimeout: a.Config.ShutdownTimeout, Log: a.Log},
		lifecycle.Func{ComponentName: "stream closer", Fn: func(ctx context.Context) error {
			<-ctx.Done()
			a.Store.EndAll()
			return nil
		}},
	}
}
