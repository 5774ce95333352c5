package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// relay is an evaluation relay running in-process on a loopback port.
type relay struct {
	app  *App
	base string
	stop func()
}

func testConfig(t testing.TB, topic, stateDir string) Config {
	var c Config
	c.HTTPAddr = "127.0.0.1:0"
	c.KafkaBrokers = strings.Join(testenv.KafkaBrokers(), ",")
	c.RulesetTopic = topic
	c.StateDir = stateDir
	c.Heartbeat = time.Second
	c.ServerRate, c.ClientRate = 0, 0
	c.CORSOrigins = "*"
	c.ShutdownTimeout = 5 * time.Second
	c.LogLevel = "warn"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func startRelay(t testing.TB, cfg Config) *relay {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testLogOutput(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, log, health.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	comps := a.Components()
	comps[2] = &httpapi.Server{App: a.HTTP, Listener: ln, Addr: ln.Addr().String(), ShutdownTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lifecycle.Run(ctx, log, 10*time.Second, comps...) }()
	r := &relay{app: a, base: "http://" + ln.Addr().String()}
	stopped := false
	r.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(r.stop)
	return r
}

// relayServing starts a relay on a fresh topic that holds env1's ruleset of that version and
// waits until the relay serves it; it returns the relay and the topic's producer.
func relayServing(t testing.TB, version int64, on bool) (*relay, *kgo.Client) {
	t.Helper()
	name, prod := topic(t)
	produceRuleset(t, prod, relaytest.Ruleset("env1", version, on))
	r := startRelay(t, testConfig(t, name, t.TempDir()))
	r.waitVersion(t, "env1", version)
	r.waitCaughtUp(t)
	return r, prod
}

// topic creates a fresh compacted ruleset topic and returns its name and a producer.
func topic(t testing.TB) (string, *kgo.Client) {
	t.Helper()
	name := testenv.KafkaTopicName(t, "rulesets")
	cl := testenv.KafkaClient(t, kgo.DefaultProduceTopic(name), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(64<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cl, kafka.RulesetTopic(name)); err != nil {
		t.Fatal(err)
	}
	return name, cl
}

func produce(t testing.TB, cl *kgo.Client, env string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(env), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func produceRuleset(t testing.TB, cl *kgo.Client, rs ruleset.Ruleset) {
	produce(t, cl, rs.Environment.ID, relaytest.JSON(rs))
}

// get sends a request with an SDK key (raw Authorization header).
func get(t testing.TB, method, url, key string, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// waitVersion polls the relay until it serves the environment at the version.
func (r *relay) waitVersion(t testing.TB, env string, v int64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "relay to serve the ruleset", func() bool {
		e := r.app.Store.Get(env)
		return e != nil && e.Version == v
	})
}

// waitCaughtUp polls until the relay has read its topic to the end (before that, unknown keys
// get 503 instead of 401).
func (r *relay) waitCaughtUp(t testing.TB) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "the relay to catch up with the topic", r.app.Feed.CaughtUp)
}

func testLogOutput() io.Writer {
	if os.Getenv("RELAY_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
