// Package app wires the ingest service: its configuration, the collector, the ClickHouse
// writer, the HTTP server and the health checks, as lifecycle components. cmd/ingest and the
// integration tests both build the service through it.
package app

import (
	"flag"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/event"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/ingest/internal/writer"
	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/logging"
)

// Config is the ingest service's configuration. Every field has a flag; its environment
// variable is SWITCHYARD_ + the flag name upper-cased with dashes as underscores.
type Config struct {
	HTTPAddr string
	LogLevel string

	KafkaBrokers     string
	EventsTopic      string
	DLQTopic         string
	RulesetsTopic    string
	EventsPartitions int

	ClickHouseAddr     string
	ClickHouseDatabase string
	ClickHouseUser     string
	ClickHousePassword string
	MigrateOnStart     bool

	Collector bool
	Writer    bool

	MaxInFlightBytes     int64
	MaxBodyBytes         int
	MaxDecompressedBytes int64
	MaxEventsPerRequest  int
	ProduceTimeout       time.Duration
	ProduceLinger        time.Duration
	Compression          string
	ClockSkewPast        time.Duration
	ClockSkewFuture      time.Duration
	ClockCorrectAbove    time.Duration
	ClientKeyRate        float64
	ServerKeyRate        float64
	CORSOrigin           string

	WriterGroup          string
	WriterInstanceID     string
	WriterBatchRows      int
	WriterBatchBytes     int
	WriterFlushInterval  time.Duration
	WriterSessionTimeout time.Duration

	QueryToken      string
	ShutdownTimeout time.Duration
	// DebugAddr serves net/http/pprof when set (profiling; keep it on localhost).
	DebugAddr string
}

// Default returns the defaults.
func Default() Config {
	return Config{
		HTTPAddr:             ":8082",
		LogLevel:             "info",
		KafkaBrokers:         "127.0.0.1:19092",
		EventsTopic:          kafka.TopicEvents,
		DLQTopic:             kafka.TopicEventsDLQ,
		RulesetsTopic:        kafka.TopicRulesets,
		EventsPartitions:     6,
		ClickHouseAddr:       "127.0.0.1:19000",
		ClickHouseDatabase:   "switchyard",
		ClickHouseUser:       "default",
		MigrateOnStart:       true,
		Collector:            true,
		Writer:               true,
		MaxInFlightBytes:     64 << 20,
		MaxBodyBytes:         4 << 20,
		MaxDecompressedBytes: 16 << 20,
		MaxEventsPerRequest:  10000,
		ProduceTimeout:       10 * time.Second,
		ProduceLinger:        20 * time.Millisecond,
		Compression:          "lz4",
		ClockSkewPast:        event.DefaultSkew.Past,
		ClockSkewFuture:      event.DefaultSkew.Future,
		ClockCorrectAbove:    event.DefaultSkew.Correct,
		ClientKeyRate:        1000,
		ServerKeyRate:        0,
		CORSOrigin:           "*",
		WriterGroup:          "switchyard-ingest-writer",
		WriterBatchRows:      50000,
		WriterBatchBytes:     writer.DefaultBatchBytes,
		WriterFlushInterval:  time.Second,
		WriterSessionTimeout: 10 * time.Second,
		ShutdownTimeout:      20 * time.Second,
	}
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP listen address (collector, usage API, health)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", c.KafkaBrokers, "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&c.EventsTopic, "events-topic", c.EventsTopic, "topic of accepted events")
	fs.StringVar(&c.DLQTopic, "dlq-topic", c.DLQTopic, "dead-letter topic of rejected events")
	fs.StringVar(&c.RulesetsTopic, "rulesets-topic", c.RulesetsTopic, "compacted rulesets topic (SDK key hashes)")
	fs.IntVar(&c.EventsPartitions, "events-partitions", c.EventsPartitions, "partitions of the events topic when it is created")
	fs.StringVar(&c.ClickHouseAddr, "clickhouse-addr", c.ClickHouseAddr, "ClickHouse native-protocol address host:port")
	fs.StringVar(&c.ClickHouseDatabase, "clickhouse-database", c.ClickHouseDatabase, "ClickHouse database (created if missing)")
	fs.StringVar(&c.ClickHouseUser, "clickhouse-user", c.ClickHouseUser, "ClickHouse user")
	fs.StringVar(&c.ClickHousePassword, "clickhouse-password", c.ClickHousePassword, "ClickHouse password")
	fs.BoolVar(&c.MigrateOnStart, "migrate-on-start", c.MigrateOnStart, "apply pending ClickHouse migrations at start-up")
	fs.BoolVar(&c.Collector, "collector", c.Collector, "run the HTTP event collector")
	fs.BoolVar(&c.Writer, "writer", c.Writer, "run the ClickHouse writer")
	fs.Int64Var(&c.MaxInFlightBytes, "max-inflight-bytes", c.MaxInFlightBytes, "bytes of batches in flight to Kafka before refusing with 503")
	fs.IntVar(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest request body as sent")
	fs.Int64Var(&c.MaxDecompressedBytes, "max-decompressed-bytes", c.MaxDecompressedBytes, "largest request body after gzip decompression")
	fs.IntVar(&c.MaxEventsPerRequest, "max-events-per-request", c.MaxEventsPerRequest, "most events in one batch")
	fs.DurationVar(&c.ProduceTimeout, "produce-timeout", c.ProduceTimeout, "longest wait for Kafka to acknowledge a batch")
	fs.DurationVar(&c.ProduceLinger, "produce-linger", c.ProduceLinger, "producer linger (batching) per partition")
	fs.StringVar(&c.Compression, "kafka-compression", c.Compression, "producer compression: lz4, zstd, snappy, gzip or none")
	fs.DurationVar(&c.ClockSkewPast, "clock-skew-past", c.ClockSkewPast, "oldest event time accepted before clamping")
	fs.DurationVar(&c.ClockSkewFuture, "clock-skew-future", c.ClockSkewFuture, "furthest future event time accepted before clamping")
	fs.DurationVar(&c.ClockCorrectAbove, "clock-correct-above", c.ClockCorrectAbove,
		"an SDK clock error (send time vs receipt) beyond which event times are corrected")
	fs.Float64Var(&c.ClientKeyRate, "client-key-rate", c.ClientKeyRate, "events per second per client SDK key (0 = unlimited)")
	fs.Float64Var(&c.ServerKeyRate, "server-key-rate", c.ServerKeyRate, "events per second per server SDK key (0 = unlimited)")
	fs.StringVar(&c.CORSOrigin, "cors-origin", c.CORSOrigin, "Access-Control-Allow-Origin for client keys")
	fs.StringVar(&c.WriterGroup, "writer-group", c.WriterGroup, "consumer group of the ClickHouse writers")
	fs.StringVar(&c.WriterInstanceID, "writer-instance-id", c.WriterInstanceID, "static group membership id (optional; e.g. the pod name)")
	fs.IntVar(&c.WriterBatchRows, "writer-batch-rows", c.WriterBatchRows, "rows per ClickHouse insert")
	fs.IntVar(&c.WriterBatchBytes, "writer-batch-bytes", c.WriterBatchBytes, "bytes of Kafka records per ClickHouse insert (bounds the writer's memory)")
	fs.DurationVar(&c.WriterFlushInterval, "writer-flush-interval", c.WriterFlushInterval, "longest a row waits before its batch is inserted")
	fs.DurationVar(&c.WriterSessionTimeout, "writer-session-timeout", c.WriterSessionTimeout, "consumer group session timeout")
	fs.StringVar(&c.QueryToken, "query-token", c.QueryToken, "bearer token of the usage and export API (empty disables it)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time to drain at shutdown")
	fs.StringVar(&c.DebugAddr, "debug-addr", c.DebugAddr, "address serving /debug/pprof (empty: off)")
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	switch {
	case c.HTTPAddr == "":
		return config.Invalid("http-addr", "required")
	case !logging.ValidLevel(c.LogLevel):
		return config.Invalid("log-level", "must be debug, info, warn or error")
	case len(kafka.SplitBrokers(c.KafkaBrokers)) == 0:
		return config.Invalid("kafka-brokers", "at least one broker is required")
	case c.EventsTopic == "" || c.EventsTopic == c.DLQTopic:
		return config.Invalid("events-topic", "required and different from -dlq-topic")
	case c.DLQTopic == "":
		return config.Invalid("dlq-topic", "required")
	case c.RulesetsTopic == "":
		return config.Invalid("rulesets-topic", "required")
	case c.EventsPartitions < 1:
		return config.Invalid("events-partitions", "must be at least 1")
	case c.ClickHouseAddr == "" || !strings.Contains(c.ClickHouseAddr, ":"):
		return config.Invalid("clickhouse-addr", "must be host:port of the native protocol")
	case !chstore.ValidDatabaseName(c.ClickHouseDatabase):
		return config.Invalid("clickhouse-database", "must be a plain identifier")
	case !c.Collector && !c.Writer:
		return config.Invalid("collector", "at least one of -collector and -writer must be true")
	case c.MaxInFlightBytes < 1<<20:
		return config.Invalid("max-inflight-bytes", "must be at least 1 MiB")
	case c.MaxBodyBytes < 1024:
		return config.Invalid("max-body-bytes", "must be at least 1 KiB")
	case c.MaxDecompressedBytes < int64(c.MaxBodyBytes):
		return config.Invalid("max-decompressed-bytes", "must be at least -max-body-bytes")
	case c.MaxEventsPerRequest < 1:
		return config.Invalid("max-events-per-request", "must be at least 1")
	case c.ProduceTimeout < 100*time.Millisecond:
		return config.Invalid("produce-timeout", "must be at least 100ms")
	case c.ProduceLinger < 0:
		return config.Invalid("produce-linger", "must not be negative")
	case c.ClockSkewPast <= 0 || c.ClockSkewFuture <= 0:
		return config.Invalid("clock-skew-past", "skew bounds must be positive")
	case c.ClockCorrectAbove <= 0:
		return config.Invalid("clock-correct-above", "must be positive (a few seconds at least: below it is network time)")
	case c.ClientKeyRate < 0 || c.ServerKeyRate < 0:
		return config.Invalid("client-key-rate", "rates must not be negative")
	case c.WriterGroup == "":
		return config.Invalid("writer-group", "required")
	case c.WriterBatchRows < 1:
		return config.Invalid("writer-batch-rows", "must be at least 1")
	case c.WriterBatchBytes < 1<<20:
		return config.Invalid("writer-batch-bytes", "must be at least 1 MiB (one event can be 512 KiB)")
	case c.WriterFlushInterval < 10*time.Millisecond:
		return config.Invalid("writer-flush-interval", "must be at least 10ms")
	case c.WriterSessionTimeout < 6*time.Second:
		return config.Invalid("writer-session-timeout", "must be at least 6s (the broker's minimum)")
	}
	if _, err := compression(c.Compression); err != nil {
		return config.Invalid("kafka-compression", "%v", err)
	}
	return nil
}
