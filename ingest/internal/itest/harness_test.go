// Package itest holds ingest's integration tests against the real local stack (Kafka and
// ClickHouse started by `make test`). They are all in this one package on purpose: some of them
// stop and restart the shared Kafka broker or ClickHouse server (deploy/local/*.sh), and go test
// runs the tests of one package one after another, so no other ingest test is talking to the
// stack while it is disrupted. Each test uses its own topics, consumer group and ClickHouse
// database.
package itest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	"github.com/switchyard-io/switchyard/ingest/internal/keys"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// stack is one test's isolated slice of the local stack.
type stack struct {
	cfg app.Config
	ch  driver.Conn
}

// newStack returns a configuration with unique topics, group and ClickHouse database, with the
// database created (migrated) and dropped at cleanup.
func newStack(t *testing.T) *stack {
	t.Helper()
	chAddr := testenv.RequireClickHouse(t)
	cfg := app.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.KafkaBrokers = strings.Join(testenv.KafkaBrokers(), ",")
	cfg.EventsTopic = testenv.KafkaTopicName(t, "switchyard.events")
	cfg.DLQTopic = testenv.KafkaTopicName(t, "switchyard.events.dlq")
	cfg.RulesetsTopic = testenv.KafkaTopicName(t, "switchyard.rulesets")
	cfg.EventsPartitions = 4
	cfg.ClickHouseAddr = chAddr
	cfg.ClickHouseDatabase = "test_ingest_" + testenv.Suffix()
	cfg.WriterGroup = "test-writer-" + testenv.Suffix()
	cfg.WriterFlushInterval = 200 * time.Millisecond
	cfg.WriterSessionTimeout = 6 * time.Second
	cfg.QueryToken = "test-token"
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.LogLevel = "warn"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := cfg.ChOptions()
	if _, err := chstore.Migrate(ctx, opts, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := chstore.DropDatabase(ctx, opts); err != nil {
			t.Logf("drop database %s: %v", opts.Database, err)
		}
	})
	conn, err := ch.Open(&ch.Options{Protocol: ch.Native, Addr: []string{chAddr}, Auth: ch.Auth{Database: opts.Database, Username: "default"},
		DialTimeout: 5 * time.Second, MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Create the rulesets topic up front so the test can publish keys before the service starts.
	cl := testenv.KafkaClient(t)
	if err := kafka.EnsureTopics(ctx, cl, kafka.RulesetTopic(cfg.RulesetsTopic)); err != nil {
		t.Fatal(err)
	}
	return &stack{cfg: cfg, ch: conn}
}

// service is a running ingest process (in this test process).
type service struct {
	*app.Service
	URL  string
	stop func() error
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("INGEST_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// start builds and runs the service with cfg; it is stopped at cleanup (or by stop).
func start(t *testing.T, cfg app.Config, opts app.Options) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc, err := app.New(ctx, cfg, testLogger(), opts)
	if err != nil {
		ln.Close()
		t.Fatalf("start ingest: %v", err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			stopRun()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				runErr = fmt.Errorf("service did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	s := &service{Service: svc, URL: "http://" + ln.Addr().String(), stop: stop}
	if cfg.Collector {
		testenv.Eventually(t, 30*time.Second, "SDK keys loaded", svc.Keys.Ready)
	}
	return s
}

// sdkKey is a raw SDK key with its kind.
type sdkKey struct {
	raw     string
	kind    ruleset.KeyKind
	expires *time.Time
}

// publishKeys publishes a ruleset for env with the given keys to the stack's rulesets topic.
func (s *stack) publishKeys(t *testing.T, env string, version int64, ks ...sdkKey) {
	t.Helper()
	rs := ruleset.Ruleset{SchemaVersion: ruleset.SchemaVersion, Version: version, GeneratedAt: time.Now().UTC(),
		Environment: ruleset.Environment{ID: env, Key: env, ProjectID: "p1", ProjectKey: "p"}, Flags: []ruleset.Flag{}, Segments: []ruleset.Segment{}}
	for _, k := range ks {
		rs.SDKKeys = append(rs.SDKKeys, ruleset.SDKKey{Hash: keys.Hash(k.raw), Kind: k.kind, ExpiresAt: k.expires})
	}
	val, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	s.produce(t, &kgo.Record{Topic: s.cfg.RulesetsTopic, Key: []byte(env), Value: val})
}

func (s *stack) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	cl := testenv.KafkaClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// ev is a generated event (JSON form) with its id.
type ev map[string]any

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func exposure(ctxKey, flag, variation, experiment string) ev {
	return ev{"event_id": newID(), "type": "exposure", "timestamp": time.Now().UnixMilli(), "context_kind": "user",
		"context_key": ctxKey, "flag_key": flag, "variation_key": variation, "flag_version": 3, "reason": "rule_match",
		"rule_id": "r1", "experiment_key": experiment, "sdk": map[string]string{"name": "itest", "version": "0.0.1"}}
}

func track(ctxKey, key string, value float64) ev {
	return ev{"event_id": newID(), "type": "track", "timestamp": time.Now().UnixMilli(), "context_kind": "user",
		"context_key": ctxKey, "event_key": key, "value": value, "properties": map[string]any{"plan": "pro", "seats": 3, "trial": false}}
}

func summary(counters ...map[string]any) ev {
	now := time.Now().UnixMilli()
	return ev{"event_id": newID(), "type": "summary", "timestamp": now, "start": now - 10000, "end": now, "counters": counters}
}

// mixedEvents returns n events: 60% exposures, 30% tracks, 10% summaries (one counter each,
// count 2). It also returns the expected counts per type.
func mixedEvents(n int, experiment string) (events []ev, exposures, tracks, summaries int) {
	for i := 0; i < n; i++ {
		ctxKey := fmt.Sprintf("user-%d", i%500)
		switch i % 10 {
		case 0:
			events = append(events, summary(map[string]any{"flag_key": "checkout", "variation_key": "on", "flag_version": 3, "count": 2}))
			summaries++
		case 1, 2, 3:
			events = append(events, track(ctxKey, "purchase", float64(i%7)))
			tracks++
		default:
			variation := "control"
			if i%2 == 0 {
				variation = "treatment"
			}
			events = append(events, exposure(ctxKey, "checkout", variation, experiment))
			exposures++
		}
	}
	return
}

type response struct {
	Status     int
	RetryAfter string
	Body       []byte
	Header     http.Header
}

func (r response) result(t *testing.T) (accepted int, rejected map[string]int) {
	t.Helper()
	var out struct {
		Accepted int            `json:"accepted"`
		Rejected map[string]int `json:"rejected"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("response %d %s: %v", r.Status, r.Body, err)
	}
	return out.Accepted, out.Rejected
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// post sends body to the collector.
func post(t *testing.T, url, key, contentType string, body []byte, gz bool, header ...string) response {
	t.Helper()
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{Status: -1, Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Body: data, Header: resp.Header}
}

func postJSON(t *testing.T, url, key string, events []ev, gz bool) response {
	t.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, url, key, "application/json", body, gz)
}

// sendAll posts events in batches of size, retrying each batch (same events, as an SDK would)
// until it is accepted or the deadline passes.
func sendAll(t *testing.T, url, key string, events []ev, size int, deadline time.Duration) {
	t.Helper()
	end := time.Now().Add(deadline)
	for i := 0; i < len(events); i += size {
		batch := events[i:min(i+size, len(events))]
		for {
			r := postJSON(t, url, key, batch, i%(2*size) == 0)
			if r.Status == http.StatusAccepted {
				if acc, rej := r.result(t); acc != len(batch) {
					t.Fatalf("batch at %d: accepted %d of %d, rejected %v", i, acc, len(batch), rej)
				}
				break
			}
			if r.Status != http.StatusServiceUnavailable && r.Status != http.StatusTooManyRequests && r.Status != -1 {
				t.Fatalf("batch at %d: status %d: %s", i, r.Status, r.Body)
			}
			if time.Now().After(end) {
				t.Fatalf("batch at %d not accepted before the deadline; last status %d: %s", i, r.Status, r.Body)
			}
			time.Sleep(100 * time.Millisecond) // an SDK's retry backoff, not a wait for a condition
		}
	}
}

// count runs a single-number query.
func (s *stack) count(t *testing.T, q string, args ...any) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var n uint64
	if err := s.ch.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// distinct is the number of distinct events in a raw table (exact with duplicates).
func (s *stack) distinct(t *testing.T, table string) uint64 {
	return s.count(t, "SELECT uniqExact(event_id) FROM "+table)
}

// waitDistinct polls until table holds exactly want distinct events, and then checks that it
// does not exceed it.
func (s *stack) waitDistinct(t *testing.T, table string, want int, timeout time.Duration) {
	t.Helper()
	var got uint64
	testenv.Eventually(t, timeout, fmt.Sprintf("%d distinct events in %s", want, table), func() bool {
		got = s.distinct(t, table)
		if got > uint64(want) {
			t.Fatalf("%s holds %d distinct events, more than the %d sent", table, got, want)
		}
		return got == uint64(want)
	})
}

// runScript runs a deploy/local script (stop/start of the shared stack).
func runScript(t *testing.T, script, action string) {
	t.Helper()
	root := repoRoot(t)
	cmd := execCommand(root+"/deploy/local/"+script, action)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, action, err, out)
	}
}

// waitFirstExposures waits until experiment_units holds want contexts. A materialized view's
// target is written during the same INSERT as its source table, but after it: for a moment
// the raw rows are visible and the aggregation is not yet.
func (s *stack) waitFirstExposures(t *testing.T, want int) {
	t.Helper()
	q := "SELECT count() FROM (SELECT 1 FROM experiment_units GROUP BY environment_id, experiment_key, context_kind, context_key)"
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("%d contexts in experiment_units", want), func() bool { return s.count(t, q) >= uint64(want) })
	if got := s.count(t, q); got != uint64(want) {
		t.Fatalf("experiment_units holds %d contexts, want %d", got, want)
	}
}
