package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/pprof"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/flagsvc/internal/api"
	"github.com/switchyard-io/switchyard/flagsvc/internal/environments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/experiments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/flags"
	"github.com/switchyard-io/switchyard/flagsvc/internal/guardrails"
	"github.com/switchyard-io/switchyard/flagsvc/internal/metrics"
	"github.com/switchyard-io/switchyard/flagsvc/internal/orgs"
	"github.com/switchyard-io/switchyard/flagsvc/internal/publisher"
	"github.com/switchyard-io/switchyard/flagsvc/internal/sdkkeys"
	"github.com/switchyard-io/switchyard/flagsvc/internal/segments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/flagsvc/internal/tokens"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/pg"
)

// App is the assembled flag service.
type App struct {
	Config    Config
	Log       *slog.Logger
	Store     *store.Store
	Kafka     *kgo.Client
	HTTP      *fiber.App
	Publisher *publisher.Publisher
	Tokens    *tokens.Service
	Services  api.Services
}

// New connects to Postgres (migrating if configured) and Kafka and assembles the service.
// Kafka need not be up: changes still commit, and the publisher catches up when it returns.
func New(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) (*App, error) {
	pool, err := pg.Connect(ctx, cfg.PGDSN, int32(cfg.PGMaxConns))
	if err != nil {
		return nil, err
	}
	st := store.New(pool)
	if cfg.MigrateOnStart {
		if _, err := st.Migrate(ctx, log); err != nil {
			pool.Close()
			return nil, err
		}
	}
	kcl, err := kgo.NewClient(publisher.ProducerOptions(kafka.SplitBrokers(cfg.KafkaBrokers))...)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	tok := tokens.New(st, log)
	org := orgs.New(st)
	org.MembershipChanged = tok.Forget
	svc := api.Services{
		Store: st, Tokens: tok, Orgs: org, Environments: environments.New(st), Flags: flags.New(st),
		Segments: segments.New(st), SDKKeys: sdkkeys.New(st), Metrics: metrics.New(st), Experiments: experiments.New(st),
		Guardrails: guardrails.New(st),
	}
	checks := health.NewChecks()
	checks.Add("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	checks.Add("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, kcl) })
	web := httpapi.New(httpapi.Options{Service: "flagsvc", Logger: log, Registry: reg, StreamRequestBody: true, AccessLog: cfg.AccessLog})
	if cfg.Pprof {
		web.Use(pprof.New())
	}
	health.Mount(web, checks, reg)
	api.Mount(web, svc)
	return &App{
		Config: cfg, Log: log, Store: st, Kafka: kcl, HTTP: web, Tokens: tok, Services: svc,
		Publisher: publisher.New(publisher.Config{Topic: cfg.RulesetTopic, Sweep: cfg.PublishSweep}, st, kcl, log, reg),
	}, nil
}

// Components are the long-running parts: the HTTP server, the publisher, the token recorder.
func (a *App) Components() []lifecycle.Component {
	return []lifecycle.Component{
		&httpapi.Server{App: a.HTTP, Addr: a.Config.HTTPAddr, ShutdownTimeout: a.Config.ShutdownTimeout, Log: a.Log},
		a.Publisher,
		a.Tokens,
	}
}

// Close releases connections, in reverse order of acquisition.
func (a *App) Close() {
	a.Kafka.Close()
	a.Store.Pool.Close()
}
