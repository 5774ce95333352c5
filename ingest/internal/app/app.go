package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/ingest/internal/api"
	"github.com/switchyard-io/switchyard/ingest/internal/collector"
	"github.com/switchyard-io/switchyard/ingest/internal/event"
	"github.com/switchyard-io/switchyard/ingest/internal/keys"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/ingest/internal/writer"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
)

// Service is a built ingest process: its clients and its lifecycle components.
type Service struct {
	Config    Config
	Log       *slog.Logger
	Registry  *prometheus.Registry
	Collector *collector.Collector
	Keys      *keys.Ring
	Writer    *writer.Writer

	producer *kgo.Client
	ch       driver.Conn
	server   *httpapi.Server
	comps    []lifecycle.Component
}

// Options are the injection points of New beyond Config.
type Options struct {
	// Listener replaces listening on Config.HTTPAddr (tests pass a :0 listener).
	Listener net.Listener
	// WriterHooks are passed to the writer (tests).
	WriterHooks writer.Hooks
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// ChOptions returns the ClickHouse options of the configuration.
func (c *Config) ChOptions() chstore.Options {
	return chstore.Options{Addr: c.ClickHouseAddr, Database: c.ClickHouseDatabase, User: c.ClickHouseUser, Password: c.ClickHousePassword}
}

func compression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown codec %q (lz4, zstd, snappy, gzip, none)", name)
}

// Migrate applies the ClickHouse migrations.
func Migrate(ctx context.Context, cfg Config, log *slog.Logger) (int64, error) {
	return chstore.Migrate(ctx, cfg.ChOptions(), log)
}

// New connects to Kafka and ClickHouse, creates missing topics, applies migrations (unless
// disabled) and builds the components. ctx bounds start-up.
func New(ctx context.Context, cfg Config, log *slog.Logger, o Options) (*Service, error) {
	s := &Service{Config: cfg, Log: log, Registry: health.NewRegistry()}
	brokers := kafka.SplitBrokers(cfg.KafkaBrokers)
	codec, _ := compression(cfg.Compression)
	checks := health.NewChecks()

	var err error
	s.producer, err = kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // with idempotence (franz-go's default)
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(cfg.ProduceLinger),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(1<<20),
		kgo.MaxBufferedBytes(int(2*cfg.MaxInFlightBytes)),
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	fail := func(err error) (*Service, error) { s.Close(); return nil, err }
	topics := []kafka.TopicSpec{
		{Name: cfg.EventsTopic, Partitions: int32(cfg.EventsPartitions), Configs: map[string]string{"compression.type": "producer"}},
		{Name: cfg.DLQTopic, Partitions: 1, Configs: map[string]string{"compression.type": "producer"}},
	}
	if cfg.Collector {
		topics = append(topics, kafka.RulesetTopic(cfg.RulesetsTopic))
	}
	if err := ensureTopics(ctx, s.producer, log, topics); err != nil {
		return fail(err)
	}
	checks.Add("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, s.producer) })

	needCH := cfg.Writer || cfg.QueryToken != ""
	if needCH {
		if cfg.MigrateOnStart {
			if _, err := chstore.Migrate(ctx, cfg.ChOptions(), log); err != nil {
				return fail(err)
			}
		}
		if s.ch, err = chstore.Open(ctx, cfg.ChOptions()); err != nil {
			return fail(err)
		}
		checks.Add("clickhouse", func(ctx context.Context) error { return s.ch.Ping(ctx) })
	}

	srv := &api.Server{ClickHouse: s.ch, QueryToken: cfg.QueryToken, CORSOrigin: cfg.CORSOrigin, Log: log}
	if cfg.Collector {
		s.Keys = keys.NewRing(o.Now)
		s.Collector = collector.New(collector.Config{
			EventsTopic:          cfg.EventsTopic,
			DLQTopic:             cfg.DLQTopic,
			MaxInFlightBytes:     cfg.MaxInFlightBytes,
			MaxDecompressedBytes: cfg.MaxDecompressedBytes,
			MaxEvents:            cfg.MaxEventsPerRequest,
			ProduceTimeout:       cfg.ProduceTimeout,
			Skew:                 event.Skew{Past: cfg.ClockSkewPast, Future: cfg.ClockSkewFuture, Correct: cfg.ClockCorrectAbove},
			ClientKeyRate:        cfg.ClientKeyRate,
			ServerKeyRate:        cfg.ServerKeyRate,
		}, s.producer, log, s.Registry, o.Now)
		srv.Collector, srv.Keys = s.Collector, s.Keys
		s.comps = append(s.comps, &keys.Consumer{Ring: s.Keys, Brokers: brokers, Topic: cfg.RulesetsTopic, Log: log})
		checks.Add("sdk_keys", func(context.Context) error {
			if !s.Keys.Ready() {
				return fmt.Errorf("still reading %s", cfg.RulesetsTopic)
			}
			return nil
		})
	}
	if cfg.Writer {
		s.Writer = writer.New(writer.Config{
			Brokers:        brokers,
			Topic:          cfg.EventsTopic,
			DLQTopic:       cfg.DLQTopic,
			Group:          cfg.WriterGroup,
			InstanceID:     cfg.WriterInstanceID,
			BatchRows:      cfg.WriterBatchRows,
			BatchBytes:     cfg.WriterBatchBytes,
			FlushInterval:  cfg.WriterFlushInterval,
			SessionTimeout: cfg.WriterSessionTimeout,
			DrainTimeout:   cfg.ShutdownTimeout / 2,
		}, s.ch, log, s.Registry, o.WriterHooks)
		s.comps = append(s.comps, s.Writer)
	}

	app := httpapi.New(httpapi.Options{Service: "ingest", Logger: log, Registry: s.Registry, BodyLimit: cfg.MaxBodyBytes})
	health.Mount(app, checks, s.Registry)
	srv.Mount(app)
	s.server = &httpapi.Server{App: app, Addr: cfg.HTTPAddr, Listener: o.Listener, ShutdownTimeout: cfg.ShutdownTimeout / 2, Log: log}
	s.comps = append(s.comps, s.server)
	if cfg.DebugAddr != "" {
		s.comps = append(s.comps, debugServer(cfg.DebugAddr))
	}
	return s, nil
}

func ensureTopics(ctx context.Context, cl *kgo.Client, log *slog.Logger, topics []kafka.TopicSpec) error {
	for {
		err := kafka.EnsureTopics(ctx, cl, topics...)
		if err == nil {
			return nil
		}
		log.Warn("creating Kafka topics failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka topics: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// debugServer serves the Go profiler on its own listener, apart from the public port.
func debugServer(addr string) lifecycle.Component {
	return lifecycle.Func{ComponentName: "debug " + addr, Fn: func(ctx context.Context) error {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}}
}

// Components are the lifecycle components to run.
func (s *Service) Components() []lifecycle.Component { return s.comps }

// Run runs every component until ctx ends, then drains, and closes the clients.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	return lifecycle.Run(ctx, s.Log, s.Config.ShutdownTimeout, s.comps...)
}

// Close releases the clients (after Run returned). The producer is flushed first, for records
// of batches that already answered 503 but are still in flight (they may still land, which
// the event_id dedup absorbs when the SDK retries them).
func (s *Service) Close() {
	if s.producer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.producer.Flush(ctx)
		cancel()
		s.producer.Close()
	}
	if s.ch != nil {
		s.ch.Close()
	}
}
