// Package app wires the flag service together: configuration, Postgres, Kafka, the feature
// services, the HTTP API and the ruleset publisher, run as lifecycle components.
package app

import (
	"flag"
	"time"

	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/logging"
)

// Config is the flag service's configuration; every field has a flag and a SWITCHYARD_* variable.
type Config struct {
	HTTPAddr        string
	PGDSN           string
	PGMaxConns      int
	KafkaBrokers    string
	RulesetTopic    string
	PublishSweep    time.Duration
	ShutdownTimeout time.Duration
	LogLevel        string
	MigrateOnStart  bool
	AccessLog       bool
	Pprof           bool
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "HTTP listen address")
	fs.StringVar(&c.PGDSN, "pg-dsn", "postgres://switchyard:switchyard@127.0.0.1:15432/switchyard?sslmode=disable", "Postgres connection string")
	fs.IntVar(&c.PGMaxConns, "pg-max-conns", 20, "maximum Postgres connections")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "127.0.0.1:19092", "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&c.RulesetTopic, "rulesets-topic", kafka.TopicRulesets, "compacted topic rulesets are published to")
	fs.DurationVar(&c.PublishSweep, "publish-sweep", 5*time.Second, "how often the publisher looks for unpublished changes without a notification")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight work may take to drain on shutdown")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.MigrateOnStart, "migrate-on-start", true, "apply database migrations at start-up")
	fs.BoolVar(&c.AccessLog, "access-log", false, "log every request")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go profiles at /debug/pprof/ (for load tests)")
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	switch {
	case c.HTTPAddr == "":
		return config.Invalid("http-addr", "is required")
	case c.PGDSN == "":
		return config.Invalid("pg-dsn", "is required")
	case c.PGMaxConns < 2:
		return config.Invalid("pg-max-conns", "must be at least 2 (the publisher holds one)")
	case len(kafka.SplitBrokers(c.KafkaBrokers)) == 0:
		return config.Invalid("kafka-brokers", "at least one broker is required")
	case c.RulesetTopic == "":
		return config.Invalid("rulesets-topic", "is required")
	case c.PublishSweep < 100*time.Millisecond:
		return config.Invalid("publish-sweep", "must be at least 100ms")
	case c.ShutdownTimeout <= 0:
		return config.Invalid("shutdown-timeout", "must be positive")
	case !logging.ValidLevel(c.LogLevel):
		return config.Invalid("log-level", "must be debug, info, warn or error")
	}
	return nil
}
