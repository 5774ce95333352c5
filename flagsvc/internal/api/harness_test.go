package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/app"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/lifecycle"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// stack is a flag service running in-process against the real Postgres (a fresh database)
// and Kafka (a fresh topic) of the local stack, serving on a real loopback port.
type stack struct {
	t     testing.TB
	app   *app.App
	base  string
	owner string // owner API token
	topic string
	dsn   string
	http  *http.Client
}

func newStack(t testing.TB) *stack {
	t.Helper()
	return newStackWith(t, stackOptions{})
}

// stackOptions vary newStack: another replica of an existing stack (same database, topic and
// owner token), or a publisher sweep other than the tests' quick one.
type stackOptions struct {
	replicaOf *stack
	sweep     time.Duration
}

func newStackWith(t testing.TB, o stackOptions) *stack {
	t.Helper()
	cfg := app.Config{}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.PGMaxConns = 20
	cfg.KafkaBrokers = strings.Join(testenv.KafkaBrokers(), ",")
	if r := o.replicaOf; r != nil {
		cfg.PGDSN, cfg.RulesetTopic = r.dsn, r.topic
	} else {
		cfg.PGDSN, cfg.RulesetTopic = testenv.PostgresDB(t), testenv.KafkaTopicName(t, "rulesets")
	}
	cfg.PublishSweep = 250 * time.Millisecond
	if o.sweep > 0 {
		cfg.PublishSweep = o.sweep
	}
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.LogLevel = "warn"
	cfg.MigrateOnStart = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.New(ctx, cfg, log, health.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	components := a.Components()
	components[0] = &httpapi.Server{App: a.HTTP, Listener: ln, Addr: ln.Addr().String()}
	go func() { done <- lifecycle.Run(runCtx, log, 5*time.Second, components...) }()
	t.Cleanup(func() {
		stop()
		<-done
		a.Close()
	})
	s := &stack{t: t, app: a, base: "http://" + ln.Addr().String(), topic: cfg.RulesetTopic, dsn: cfg.PGDSN,
		http: &http.Client{Timeout: 30 * time.Second}}
	if o.replicaOf != nil {
		s.owner = o.replicaOf.owner
		return s
	}
	res, err := a.Services.Orgs.Bootstrap(ctx, "acme", "Acme", "owner@acme.test", true)
	if err != nil {
		t.Fatal(err)
	}
	s.owner = res.Token
	return s
}

// response is a decoded HTTP response.
type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errorBody returns the uniform error of a response.
func (r response) errorBody(t testing.TB) httpapi.ErrorDetail {
	t.Helper()
	var e httpapi.ErrorBody
	r.decode(t, &e)
	return e.Error
}

// req sends a request; body is JSON-encoded unless it is a string or []byte (sent as is).
func (s *stack) req(method, path, token string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: raw, Header: resp.Header}
}

// must sends a request as the owner and fails the test unless the status is want.
// Extra header pairs (If-Match) may follow out.
func (s *stack) must(want int, method, path string, body any, out any, headers ...string) response {
	s.t.Helper()
	r := s.req(method, path, s.owner, body, headers...)
	if r.Status != want {
		s.t.Fatalf("%s %s %v: status %d, want %d: %s", method, path, headers, r.Status, want, r.Body)
	}
	if out != nil {
		r.decode(s.t, out)
	}
	return r
}

// refused sends a request as the owner (with extra header pairs, such as If-Match) and fails
// the test unless it gets status with an error naming field and saying why; it returns the error.
func (s *stack) refused(status int, field, method, path string, body any, headers ...string) httpapi.ErrorDetail {
	s.t.Helper()
	r := s.req(method, path, s.owner, body, headers...)
	if r.Status != status {
		s.t.Fatalf("%s %s %v: status %d, want %d naming %q: %s", method, path, headers, r.Status, status, field, r.Body)
	}
	e := r.errorBody(s.t)
	if e.Field != field || e.Message == "" {
		s.t.Fatalf("%s %s %v: field %q, want %q: %s", method, path, headers, e.Field, field, e.Message)
	}
	return e
}

// requires is a configuration that serves "on" and requires flag's "on" variation.
func requires(flag string) map[string]any {
	return map[string]any{"prerequisites": []any{map[string]any{"flag": flag, "variation": "on"}}, "fallthrough": map[string]any{"variation": "on"}}
}

// project creates a project (with the default environments) and returns its key.
func (s *stack) project(key string) string {
	s.t.Helper()
	s.must(201, "POST", "/api/v1/projects", map[string]any{"key": key, "name": key}, nil)
	return key
}

// boolFlag creates a boolean flag with variations on/off.
func (s *stack) boolFlag(project, key string) {
	s.t.Helper()
	s.must(201, "POST", "/api/v1/projects/"+project+"/flags", map[string]any{
		"key": key, "kind": "boolean", "variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}},
	}, nil)
}

// serviceToken creates a service token with a role (optionally scoped) and returns it.
func (s *stack) serviceToken(role domain.Role, project, env string) string {
	s.t.Helper()
	var tk domain.APIToken
	s.must(201, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "t-" + string(role), "role": role,
		"project": project, "environment": env}, &tk)
	return tk.Token
}

func configPath(project, flag, env string) string {
	return "/api/v1/projects/" + project + "/flags/" + flag + "/environments/" + env
}

// rollout gives flag (variations on/off) a 10% "on" percentage rollout on its fallthrough in env.
func (s *stack) rollout(project, flag, env string) {
	s.t.Helper()
	s.must(200, "PATCH", configPath(project, flag, env), map[string]any{"fallthrough": map[string]any{"variation": nil,
		"rollout": map[string]any{"variations": []any{map[string]any{"variation": "off", "weight": 90000},
			map[string]any{"variation": "on", "weight": 10000}}}}}, nil)
}
