// Package app wires the jobs service together: configuration, Postgres, ClickHouse, the flag
// service client, Slack, the periodic jobs (guardrail sweep, stale-flag digest, scheduled
// changes), the alert dispatcher and the HTTP API, run as lifecycle components.
package app

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/periodic"
	"github.com/switchyard-io/switchyard/jobs/internal/retention"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/jobs/internal/slack"
	"github.com/switchyard-io/switchyard/jobs/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/logging"
)

// Config is the jobs service's configuration; every field has a flag and a SWITCHYARD_*
// variable. FlagsvcToken and SlackToken are secrets: never logged, never returned.
type Config struct {
	HTTPAddr           string
	PGDSN              string
	PGMaxConns         int
	ClickHouseAddr     string
	ClickHouseDatabase string
	ClickHouseUser     string
	ClickHousePassword string
	FlagsvcURL         string
	FlagsvcToken       string
	FlagsvcTokenFile   string
	StatsURL           string
	DashboardURL       string

	SlackToken          string
	SlackAPIURL         string
	SlackDefaultChannel string

	GuardrailInterval    time.Duration
	GuardrailAlpha       float64
	GuardrailTuning      float64
	GuardrailMinUnits    int
	GuardrailParallelism int

	StaleDigestSchedule      string
	StaleNoEvaluationsDays   int
	StaleSingleVariationDays int

	SchedulerInterval time.Duration
	SchedulerMaxDelay time.Duration
	AlertPoll         time.Duration

	// EventRetention: raw events (exposures, tracks, evaluation_summaries) are kept at least
	// this long, then dropped a whole month at a time; 0 keeps them forever.
	EventRetention time.Duration

	ReplicaID       string
	LogLevel        string
	ShutdownTimeout time.Duration
	MigrateOnStart  bool
	AccessLog       bool
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8084", "HTTP listen address (API, health, metrics)")
	fs.StringVar(&c.PGDSN, "pg-dsn", "postgres://switchyard:switchyard@127.0.0.1:15432/switchyard?sslmode=disable", "Postgres connection string (tables in schema jobs)")
	fs.IntVar(&c.PGMaxConns, "pg-max-conns", 10, "maximum Postgres connections (each led job holds one)")
	fs.StringVar(&c.ClickHouseAddr, "clickhouse-addr", "127.0.0.1:19000", "ClickHouse native-protocol address")
	fs.StringVar(&c.ClickHouseDatabase, "clickhouse-database", "switchyard", "ClickHouse database (the ingest service's)")
	fs.StringVar(&c.ClickHouseUser, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&c.ClickHousePassword, "clickhouse-password", "", "ClickHouse password")
	fs.StringVar(&c.FlagsvcURL, "flagsvc-url", "http://127.0.0.1:8080", "flag service base URL")
	fs.StringVar(&c.FlagsvcToken, "flagsvc-token", "", "the service's flag service API token (a service token; secret)")
	fs.StringVar(&c.FlagsvcTokenFile, "flagsvc-token-file", "", "file holding the service token, re-read when used (instead of -flagsvc-token)")
	fs.StringVar(&c.StatsURL, "stats-url", "http://127.0.0.1:8083", "stats service base URL (results are refreshed after a breach); empty: don't")
	fs.StringVar(&c.DashboardURL, "dashboards-url", "http://127.0.0.1:8085", "dashboard base URL for links in alerts; empty: no links")
	fs.StringVar(&c.SlackToken, "slack-token", "", "Slack bot token (xoxb-…; secret); empty: alerts are logged, not sent")
	fs.StringVar(&c.SlackAPIURL, "slack-api-url", slack.DefaultAPIURL, "Slack Web API base URL")
	fs.StringVar(&c.SlackDefaultChannel, "slack-default-channel", "", "Slack channel of projects that set none")
	fs.DurationVar(&c.GuardrailInterval, "guardrail-interval", time.Minute, "how often active guardrails are checked")
	fs.Float64Var(&c.GuardrailAlpha, "guardrail-alpha", 0.05, "one-sided false-alarm rate of a guardrail over its whole life")
	fs.Float64Var(&c.GuardrailTuning, "guardrail-sequential-tuning", 5000, "sequential tuning N* of the guardrail test (total units where it is tightest)")
	fs.IntVar(&c.GuardrailMinUnits, "guardrail-min-units", 100, "units per arm before a guardrail decides anything")
	fs.IntVar(&c.GuardrailParallelism, "guardrail-parallelism", 4, "guardrails checked at once (ClickHouse queries in flight)")
	fs.StringVar(&c.StaleDigestSchedule, "stale-digest-schedule", "0 9 * * 1", "cron schedule (UTC) of the weekly stale-flag digest")
	fs.IntVar(&c.StaleNoEvaluationsDays, "stale-no-evaluations-days", settings.DefaultThresholds.NoEvaluationsDays, "default: stale after this many days without evaluations")
	fs.IntVar(&c.StaleSingleVariationDays, "stale-single-variation-days", settings.DefaultThresholds.SingleVariationDays, "default: stale after serving one variation this many days")
	fs.DurationVar(&c.SchedulerInterval, "scheduler-interval", 10*time.Second, "how often due scheduled changes are looked for")
	fs.DurationVar(&c.SchedulerMaxDelay, "scheduler-max-delay", time.Hour, "a step the flag service could not take for this long fails (and alerts) instead of running late")
	fs.DurationVar(&c.AlertPoll, "alert-poll", time.Second, "how often the alert outbox is checked when idle")
	fs.DurationVar(&c.EventRetention, "event-retention", 0,
		"keep raw events (exposures, tracks, evaluation summaries) at least this long, then drop them a whole month at a time; 0 keeps them forever (e.g. 9480h = 395 days)")
	fs.StringVar(&c.ReplicaID, "replica-id", fmt.Sprintf("%s-%d", host, os.Getpid()), "this replica's name in claims")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long running jobs may take to finish on shutdown")
	fs.BoolVar(&c.MigrateOnStart, "migrate-on-start", true, "apply database migrations at start-up")
	fs.BoolVar(&c.AccessLog, "access-log", false, "log every request")
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	switch {
	case c.HTTPAddr == "":
		return config.Invalid("http-addr", "is required")
	case c.PGDSN == "":
		return config.Invalid("pg-dsn", "is required")
	case c.PGMaxConns < 5:
		return config.Invalid("pg-max-conns", "must be at least 5 (each led job holds one)")
	case c.ClickHouseAddr == "":
		return config.Invalid("clickhouse-addr", "is required")
	case !clickhouse.ValidDatabaseName(c.ClickHouseDatabase):
		return config.Invalid("clickhouse-database", "must be a plain identifier")
	case !validURL(c.FlagsvcURL):
		return config.Invalid("flagsvc-url", "must be an http(s) URL")
	case c.FlagsvcToken != "" && c.FlagsvcTokenFile != "":
		return config.Invalid("flagsvc-token-file", "give -flagsvc-token or -flagsvc-token-file, not both")
	case c.StatsURL != "" && !validURL(c.StatsURL):
		return config.Invalid("stats-url", "must be an http(s) URL or empty")
	case c.DashboardURL != "" && !validURL(c.DashboardURL):
		return config.Invalid("dashboards-url", "must be an http(s) URL or empty")
	case !validURL(c.SlackAPIURL):
		return config.Invalid("slack-api-url", "must be an http(s) URL")
	case settings.ValidateChannel(c.SlackDefaultChannel) != nil:
		return config.Invalid("slack-default-channel", "a channel id or name without spaces")
	case c.GuardrailInterval < time.Second:
		return config.Invalid("guardrail-interval", "must be at least 1s")
	case !(c.GuardrailAlpha > 0 && c.GuardrailAlpha < 0.5):
		return config.Invalid("guardrail-alpha", "must be in (0, 0.5)")
	case !(c.GuardrailTuning > 0):
		return config.Invalid("guardrail-sequential-tuning", "must be positive")
	case c.GuardrailMinUnits < 2:
		return config.Invalid("guardrail-min-units", "must be at least 2")
	case c.GuardrailParallelism < 1:
		return config.Invalid("guardrail-parallelism", "must be at least 1")
	case c.StaleNoEvaluationsDays < 1 || c.StaleNoEvaluationsDays > settings.MaxDays:
		return config.Invalid("stale-no-evaluations-days", "must be between 1 and %d", settings.MaxDays)
	case c.StaleSingleVariationDays < 1 || c.StaleSingleVariationDays > settings.MaxDays:
		return config.Invalid("stale-single-variation-days", "must be between 1 and %d", settings.MaxDays)
	case c.SchedulerInterval < time.Second || c.SchedulerInterval > time.Minute:
		return config.Invalid("scheduler-interval", "must be between 1s and 1m (changes run within a minute of their time)")
	case c.SchedulerMaxDelay < time.Minute:
		return config.Invalid("scheduler-max-delay", "must be at least 1m")
	case c.AlertPoll < 10*time.Millisecond:
		return config.Invalid("alert-poll", "must be at least 10ms")
	case c.EventRetention < 0:
		return config.Invalid("event-retention", "must be 0 (keep raw events forever) or positive")
	case c.EventRetention > 0 && c.EventRetention < retention.MinRetention:
		return config.Invalid("event-retention", "must be 0 (keep raw events forever) or at least %s (%d days): "+
			"late events are folded again for 169h, CUPED pre-periods, 14-day baselines and guardrails read raw events",
			retention.MinRetention, int(retention.MinRetention/(24*time.Hour)))
	case c.ReplicaID == "":
		return config.Invalid("replica-id", "is required")
	case c.ShutdownTimeout <= 0:
		return config.Invalid("shutdown-timeout", "must be positive")
	case !logging.ValidLevel(c.LogLevel):
		return config.Invalid("log-level", "must be debug, info, warn or error")
	}
	if _, err := periodic.Parse(c.StaleDigestSchedule); err != nil {
		return config.Invalid("stale-digest-schedule", "not a cron schedule: %v", err)
	}
	return nil
}

// every turns an interval into a cron spec.
func every(d time.Duration) string { return "@every " + d.String() }
