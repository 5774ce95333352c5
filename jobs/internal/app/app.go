package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/api"
	"github.com/switchyard-io/switchyard/jobs/internal/authz"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/guardrail"
	"github.com/switchyard-io/switchyard/jobs/internal/periodic"
	"github.com/switchyard-io/switchyard/jobs/internal/retention"
	"github.com/switchyard-io/switchyard/jobs/internal/schedule"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/jobs/internal/slack"
	"github.com/switchyard-io/switchyard/jobs/internal/stale"
	"github.com/switchyard-io/switchyard/jobs/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
)

// Job names (also their leader lock names).
const (
	JobGuardrails = "guardrail-sweep"
	JobDigest     = "stale-digest"
	JobScheduler  = "scheduled-changes"
	JobRetention  = "event-retention"
)

// RetentionSchedule is when the event retention runs (hourly, on the leader): a month
// becomes droppable at most an hour after its end passes the cut-off.
const RetentionSchedule = "7 * * * *"

// App is the assembled service.
type App struct {
	Config     Config
	Log        *slog.Logger
	Store      *postgres.Store
	CH         chdriver.Conn
	Flags      *flagsvc.Client
	Sweeper    *guardrail.Sweeper
	Executor   *schedule.Executor
	Digester   *stale.Digester
	Dispatcher *alert.Dispatcher
	Retainer   *retention.Retainer
	Runner     *periodic.Runner
	Server     *httpapi.Server
}

// New connects to Postgres (migrating when asked) and ClickHouse and builds every component.
func New(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) (*App, error) {
	st, err := postgres.Open(ctx, cfg.PGDSN, int32(cfg.PGMaxConns), cfg.MigrateOnStart, log)
	if err != nil {
		return nil, err
	}
	st.DefaultChannel = cfg.SlackDefaultChannel
	ch, err := clickhouse.Open(ctx, clickhouse.Options{Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDatabase,
		User: cfg.ClickHouseUser, Password: cfg.ClickHousePassword})
	if err != nil {
		st.Close()
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Store: st, CH: ch}
	a.Flags = flagsvc.New(cfg.FlagsvcURL, cfg.FlagsvcToken, cfg.FlagsvcTokenFile)
	if !a.Flags.HasToken() {
		log.Warn("no flag service token yet: guardrails, digests and scheduled changes wait until -flagsvc-token or -flagsvc-token-file provides one")
	}
	if cfg.SlackToken == "" {
		log.Warn("no Slack token: alerts are recorded and logged, not sent")
	}
	sl := slack.New(slack.Config{Token: cfg.SlackToken, APIURL: cfg.SlackAPIURL, Log: log})
	a.Dispatcher = alert.NewDispatcher(st, sl, log, cfg.ReplicaID, reg)
	a.Dispatcher.Poll = cfg.AlertPoll

	a.Sweeper = guardrail.NewSweeper(a.Flags, st, ch, log, reg)
	a.Sweeper.Test = guardrail.Test{Alpha: cfg.GuardrailAlpha, Tuning: cfg.GuardrailTuning, MinUnits: int64(cfg.GuardrailMinUnits)}
	a.Sweeper.Parallel = cfg.GuardrailParallelism
	a.Sweeper.DashboardURL = cfg.DashboardURL
	a.Sweeper.Wake = a.Dispatcher.Wake
	if cfg.StatsURL != "" {
		a.Sweeper.OnBreach = a.refreshResults
	}

	a.Executor = schedule.NewExecutor(st, a.Flags, log, reg)
	a.Executor.DashboardURL = cfg.DashboardURL
	a.Executor.MaxDelay = cfg.SchedulerMaxDelay
	a.Executor.Wake = a.Dispatcher.Wake

	defaults := settings.Thresholds{NoEvaluationsDays: cfg.StaleNoEvaluationsDays, SingleVariationDays: cfg.StaleSingleVariationDays}
	reporter := &stale.Reporter{Settings: st, CH: ch, Defaults: defaults}
	a.Digester = &stale.Digester{Reporter: reporter, Flags: a.Flags, Store: st, Log: log, DashboardURL: cfg.DashboardURL, Wake: a.Dispatcher.Wake}

	a.Retainer = retention.New(clickhouse.Partitions{Conn: ch}, cfg.EventRetention, log, reg)

	a.Runner = periodic.New(st.Pool, log, reg,
		periodic.Job{Name: JobGuardrails, Schedule: every(cfg.GuardrailInterval), Leader: true, Timeout: 10 * time.Minute,
			Run: a.sweep},
		periodic.Job{Name: JobDigest, Schedule: cfg.StaleDigestSchedule, Leader: true, Timeout: 30 * time.Minute,
			Run: a.needToken(a.Digester.Run)},
		// Every replica runs due steps: each is leased to one of them, so a dead replica's
		// steps are taken over at the next tick.
		periodic.Job{Name: JobScheduler, Schedule: every(cfg.SchedulerInterval), Timeout: 5 * time.Minute,
			Run: a.needToken(func(ctx context.Context, _ time.Time) error { _, err := a.Executor.RunDue(ctx); return err })},
	)
	if cfg.EventRetention > 0 {
		a.Runner.Jobs = append(a.Runner.Jobs, periodic.Job{Name: JobRetention, Schedule: RetentionSchedule, Leader: true,
			Timeout: 30 * time.Minute, Run: a.retain})
	}

	checks := health.NewChecks()
	checks.Add("postgres", st.Ping)
	checks.Add("clickhouse", func(ctx context.Context) error { return ch.Ping(ctx) })
	app := httpapi.New(httpapi.Options{Service: "jobs", Logger: log, Registry: reg, AccessLog: cfg.AccessLog})
	health.Mount(app, checks, reg)
	api.Mount(app, api.Deps{Store: st, Flags: a.Flags, Auth: authz.New(a.Flags), Reporter: reporter})
	a.Server = &httpapi.Server{App: app, Addr: cfg.HTTPAddr, ShutdownTimeout: cfg.ShutdownTimeout, Log: log}
	return a, nil
}

// needToken skips a run (quietly after the first warning) while the service has no token.
func (a *App) needToken(run func(ctx context.Context, at time.Time) error) func(context.Context, time.Time) error {
	return func(ctx context.Context, at time.Time) error {
		if !a.Flags.HasToken() {
			a.Log.Debug("skipping a run: no flag service token yet")
			return nil
		}
		return run(ctx, at)
	}
}

func (a *App) sweep(ctx context.Context, _ time.Time) error {
	if !a.Flags.HasToken() {
		return nil
	}
	res, err := a.Sweeper.Sweep(ctx)
	if err != nil {
		return err
	}
	a.Log.Debug("guardrail sweep", "checked", res.Checked, "breached", res.Breached, "undecided", res.Undecided,
		"skipped", res.Skipped, "errors", res.Errors, "srm_alerts", res.SRM)
	return nil
}

func (a *App) retain(ctx context.Context, _ time.Time) error {
	res, err := a.Retainer.Run(ctx)
	a.Log.Debug("event retention", "cutoff_month", res.CutoffMonth, "dropped", len(res.Dropped), "failed", len(res.Failed))
	return err
}

// refreshResults asks the stats service to recompute an experiment's results after a breach,
// so the dashboard the alert links to shows the data the decision was made on (best effort).
func (a *App) refreshResults(ctx context.Context, project, experiment string) {
	if experiment == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(a.Config.StatsURL, "/")+"/v1/projects/"+
		url.PathEscape(project)+"/experiments/"+url.PathEscape(experiment)+"/refresh", nil)
	if err != nil {
		return
	}
	if t, err := a.Flags.ServiceToken(); err == nil {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		a.Log.Debug("results refresh after a breach failed", "experiment", experiment, "err", err)
		return
	}
	resp.Body.Close()
}

// Components are the service's long-running parts, in start order.
func (a *App) Components() []lifecycle.Component {
	return []lifecycle.Component{a.Dispatcher, a.Runner, a.Server}
}

// Close releases the connections.
func (a *App) Close() {
	a.CH.Close()
	a.Store.Close()
}

// Describe is a one-line summary of the configuration without secrets, for the start-up log.
func (c Config) Describe() string {
	return fmt.Sprintf("http=%s clickhouse=%s/%s flagsvc=%s token=%t slack=%t guardrail-interval=%s digest=%q scheduler-interval=%s event-retention=%s",
		c.HTTPAddr, c.ClickHouseAddr, c.ClickHouseDatabase, c.FlagsvcURL, c.FlagsvcToken != "" || c.FlagsvcTokenFile != "",
		c.SlackToken != "", c.GuardrailInterval, c.StaleDigestSchedule, c.SchedulerInterval, c.EventRetention)
}
