// Package bench is the end-to-end load generator behind cmd/ingestbench: it runs a real ingest
// process against the local Kafka and ClickHouse and measures throughput, accepted-to-queryable
// latency and the collector's memory under overload.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/ingest/internal/keys"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/platform/kafka"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Config tunes a benchmark run.
type Config struct {
	IngestBin      string
	Brokers        string
	ClickHouseAddr string
	RepoRoot       string
	Duration       time.Duration
	Workers        int
	BatchSize      int
	Rate           float64
	Gzip           bool
	OutageFor      time.Duration
	// ExtraEnv is added to the ingest process's environment (tuning experiments).
	ExtraEnv []string
}

// DefaultConfig reads addresses from the SWITCHYARD_* environment like the services.
func DefaultConfig() Config {
	root, _ := os.Getwd()
	if filepath.Base(root) == "ingest" {
		root = filepath.Dir(root)
	}
	return Config{
		Brokers:        envOr("SWITCHYARD_KAFKA_BROKERS", "127.0.0.1:19092"),
		ClickHouseAddr: envOr("SWITCHYARD_CLICKHOUSE_ADDR", "127.0.0.1:19000"),
		RepoRoot:       root,
		Duration:       30 * time.Second,
		Workers:        64,
		BatchSize:      100,
		Rate:           50000,
		OutageFor:      20 * time.Second,
	}
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

// MachineSummary describes the machine for the report.
func MachineSummary() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("machine: %d cores (%s), %s, %s", runtime.NumCPU(), model, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
}

const sdkKey = "bench-server-key"

// env is one benchmark's isolated ingest process, topics and database.
type env struct {
	cfg     Config
	url     string
	cmd     *exec.Cmd
	ch      driver.Conn
	chOpts  chstore.Options
	topics  []string
	brokers []string
	tmp     string
}

func setup(ctx context.Context, cfg Config) (*env, error) {
	suffix := randHex(4)
	e := &env{cfg: cfg, brokers: kafka.SplitBrokers(cfg.Brokers)}
	e.chOpts = chstore.Options{Addr: cfg.ClickHouseAddr, Database: "bench_" + suffix, User: "default"}
	events, dlq, rulesets := "bench.events."+suffix, "bench.events.dlq."+suffix, "bench.rulesets."+suffix
	e.topics = []string{events, dlq, rulesets}

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, kafka.RulesetTopic(rulesets)); err != nil {
		return nil, err
	}
	rs := ruleset.Ruleset{SchemaVersion: ruleset.SchemaVersion, Version: 1, Environment: ruleset.Environment{ID: "bench", Key: "bench", ProjectID: "p", ProjectKey: "p"},
		SDKKeys: []ruleset.SDKKey{{Hash: keys.Hash(sdkKey), Kind: ruleset.KeyServer}}}
	val, _ := json.Marshal(rs)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: rulesets, Key: []byte("bench"), Value: val}).FirstErr(); err != nil {
		return nil, err
	}

	bin := cfg.IngestBin
	if bin == "" {
		e.tmp, err = os.MkdirTemp("", "ingestbench")
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(e.tmp, "ingest")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ingest")
		build.Dir = filepath.Join(cfg.RepoRoot, "ingest")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ingest: %v\n%s", err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	e.url = "http://127.0.0.1:" + strconv.Itoa(port)
	e.cmd = exec.Command(bin, "serve")
	e.cmd.Env = append(os.Environ(),
		"SWITCHYARD_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SWITCHYARD_KAFKA_BROKERS="+cfg.Brokers,
		"SWITCHYARD_EVENTS_TOPIC="+events,
		"SWITCHYARD_DLQ_TOPIC="+dlq,
		"SWITCHYARD_RULESETS_TOPIC="+rulesets,
		"SWITCHYARD_CLICKHOUSE_ADDR="+cfg.ClickHouseAddr,
		"SWITCHYARD_CLICKHOUSE_DATABASE="+e.chOpts.Database,
		"SWITCHYARD_WRITER_GROUP=bench-writer-"+suffix,
		"SWITCHYARD_LOG_LEVEL=warn",
	)
	e.cmd.Env = append(e.cmd.Env, cfg.ExtraEnv...)
	e.cmd.Stdout, e.cmd.Stderr = os.Stderr, os.Stderr
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(e.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			e.close()
			return nil, errors.New("ingest did not become ready")
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.ch, err = ch.Open(&ch.Options{Protocol: ch.Native, Addr: []string{cfg.ClickHouseAddr}, Auth: ch.Auth{Database: e.chOpts.Database, Username: "default"}})
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = e.cmd.Process.Kill()
		}
	}
	if e.ch != nil {
		e.ch.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = chstore.DropDatabase(ctx, e.chOpts)
	if cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...)); err == nil {
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, e.topics...)
		cl.Close()
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// rows is the number of distinct events in ClickHouse.
func (e *env) rows(ctx context.Context, exact bool) (uint64, error) {
	fn := "count()"
	if exact {
		fn = "uniqExact(event_id)"
	}
	var a, b uint64
	if err := e.ch.QueryRow(ctx, "SELECT "+fn+" FROM exposures").Scan(&a); err != nil {
		return 0, err
	}
	if err := e.ch.QueryRow(ctx, "SELECT "+fn+" FROM tracks").Scan(&b); err != nil {
		return 0, err
	}
	return a + b, nil
}

// template is a request body of BatchSize events whose event ids (and probe context key) are
// patched in place for every request, so the generator spends almost no CPU making bodies.
type template struct {
	body     []byte
	idPos    []int
	probePos int // position of the 10 digits of event 0's context key
	avgEvent int
}

func newTemplate(n int) *template {
	t := &template{}
	ts := time.Now().UnixMilli()
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"event_id":"`)
		t.idPos = append(t.idPos, b.Len())
		b.WriteString("00000000-0000-7000-8000-000000000000")
		switch {
		case i == 0:
			fmt.Fprintf(&b, `","type":"exposure","timestamp":%d,"context_kind":"user","context_key":"probe-`, ts)
			t.probePos = b.Len()
			b.WriteString(`0000000000","flag_key":"probe","variation_key":"on","flag_version":1,"reason":"fallthrough"}`)
		case i%10 < 7:
			fmt.Fprintf(&b, `","type":"exposure","timestamp":%d,"context_kind":"user","context_key":"user-%07d","flag_key":"checkout","variation_key":"treatment","flag_version":12,"experiment_key":"exp-1"}`, ts, i*7919%1000000)
		default:
			fmt.Fprintf(&b, `","type":"track","timestamp":%d,"context_kind":"user","context_key":"user-%07d","event_key":"purchase","value":19.99,"properties":{"plan":"pro"}}`, ts, i*7919%1000000)
		}
	}
	b.WriteByte(']')
	t.body = b.Bytes()
	t.avgEvent = len(t.body) / n
	return t
}

var idCounter atomic.Uint64

// fill writes fresh UUIDv7-shaped ids into body (a copy of the template's).
func (t *template) fill(body []byte, probe uint64) {
	const hexd = "0123456789abcdef"
	ms := uint64(time.Now().UnixMilli())
	for _, p := range t.idPos {
		c := idCounter.Add(1)
		var id [16]byte
		for i := 0; i < 6; i++ {
			id[i] = byte(ms >> (40 - 8*i))
		}
		for i := 0; i < 8; i++ {
			id[8+i] = byte(c >> (56 - 8*i))
		}
		id[6] = 0x70 | id[6]&0x0f
		id[8] = 0x80 | id[8]&0x3f
		j := p
		for i, v := range id {
			if i == 4 || i == 6 || i == 8 || i == 10 {
				j++ // dash
			}
			body[j], body[j+1] = hexd[v>>4], hexd[v&15]
			j += 2
		}
	}
	for i := 9; i >= 0; i-- {
		body[t.probePos+i] = byte('0' + probe%10)
		probe /= 10
	}
}

// counters of a load run.
type counters struct {
	accepted atomic.Int64 // events in 202 answers
	refused  atomic.Int64 // 503/429 answers
	errors   atomic.Int64 // transport errors
	requests atomic.Int64
}

type sender struct {
	url    string
	client *http.Client
	tmpl   *template
	c      *counters
	// onAccepted is called after each 202 with the batch's probe number.
	onAccepted func(probe uint64, at time.Time)
}

var probeCounter atomic.Uint64

// loop sends until ctx ends, waiting for wait() before each request (rate limiting).
func (s *sender) loop(ctx context.Context, wait func(context.Context) error) {
	body := bytes.Clone(s.tmpl.body)
	for ctx.Err() == nil {
		if wait != nil && wait(ctx) != nil {
			return
		}
		probe := probeCounter.Add(1)
		s.tmpl.fill(body, probe)
		backoff := 100 * time.Millisecond
		for {
			st, err := s.post(ctx, body)
			s.c.requests.Add(1)
			if err == nil && st == http.StatusAccepted {
				s.c.accepted.Add(int64(len(s.tmpl.idPos)))
				if s.onAccepted != nil {
					s.onAccepted(probe, time.Now())
				}
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.c.errors.Add(1)
			} else {
				s.c.refused.Add(1)
			}
			// The same body is retried (same event ids), as an SDK does. The retry goes on
			// past ctx's end: a batch the generator started must end accepted.
			time.Sleep(backoff)
			backoff = min(backoff*2, time.Second)
		}
	}
}

func (s *sender) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, s.url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", sdkKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func newClient(workers int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers * 2, MaxConnsPerHost: workers * 2, DisableCompression: true}}
}

// cpu samples the CPU time of the processes of the stack.
type cpu struct {
	pids  map[string]int
	start map[string]float64
	at    time.Time
}

func ticksOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

func pidFile(root, name string) int {
	b, err := os.ReadFile(filepath.Join(root, ".data", "run", name+".pid"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

func (e *env) startCPU() *cpu {
	c := &cpu{pids: map[string]int{"ingest": e.cmd.Process.Pid, "load generator": os.Getpid(),
		"kafka": pidFile(e.cfg.RepoRoot, "kafka"), "clickhouse": pidFile(e.cfg.RepoRoot, "clickhouse")}, start: map[string]float64{}, at: time.Now()}
	for n, p := range c.pids {
		c.start[n] = ticksOf(p)
	}
	return c
}

func (c *cpu) report() string {
	el := time.Since(c.at).Seconds()
	var parts []string
	total := 0.0
	for _, n := range []string{"ingest", "load generator", "kafka", "clickhouse"} {
		if c.pids[n] == 0 {
			continue
		}
		used := ticksOf(c.pids[n]) - c.start[n]
		total += used
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, 100*used/el))
	}
	return fmt.Sprintf("CPU (100%% = one core): %s; total %.0f%% of %d00%%", strings.Join(parts, ", "), 100*total/el, runtime.NumCPU())
}

func rss(pid int) (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return cur, peak
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// waitRows polls until ClickHouse holds want events (exact when exact is set).
func (e *env) waitRows(ctx context.Context, want uint64, exact bool, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := e.rows(ctx, exact)
		if err == nil && n >= want {
			if n > want && exact {
				return time.Time{}, fmt.Errorf("ClickHouse holds %d distinct events, more than the %d accepted", n, want)
			}
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("only %d of %d events queryable after %s (err %v)", n, want, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runScript(root, script, action string) error {
	out, err := exec.Command(filepath.Join(root, "deploy", "local", script), action).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", script, action, err, out)
	}
	return nil
}

// runLoad runs cfg.Workers senders until ctx ends and waits for their last batches.
func runLoad(ctx context.Context, e *env, c *counters, wait func(context.Context) error, onAccepted func(uint64, time.Time)) {
	tmpl := newTemplate(e.cfg.BatchSize)
	client := newClient(e.cfg.Workers)
	var wg sync.WaitGroup
	for i := 0; i < e.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			(&sender{url: e.url, client: client, tmpl: tmpl, c: c, onAccepted: onAccepted}).loop(ctx, wait)
		}()
	}
	wg.Wait()
}
