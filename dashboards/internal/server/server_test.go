package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/platform/health"
)

// recorder is a fake upstream service that records what reached it.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	srv  *httptest.Server
}

type recorded struct {
	Method, Path, Query, Auth, Body, IfMatch, Cookie, Comment string
}

func newRecorder(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), string(b), r.Header.Get("If-Match"), r.Header.Get("Cookie"),
			r.Header.Get("X-Switchyard-Comment")})
		rec.mu.Unlock()
		if handler != nil {
			handler(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "upstream=1")
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("ETag", `"7"`)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return r.reqs[len(r.reqs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

var testDist = fstest.MapFS{
	"index.html":          {Data: []byte(`<!doctype html><html><head><script type="module" src="/assets/index-abc.js"></script></head><body><div id="root"></div></body></html>`)},
	"assets/index-abc.js": {Data: bytes.Repeat([]byte("console.log('switchyard');\n"), 100)},
	"favicon.svg":         {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
}

type testEnv struct {
	app                          *fiber.App
	flagsvc, stats, jobs, ingest *recorder
}

func newTestEnv(t *testing.T, mutate func(*Config, *Options)) testEnv {
	t.Helper()
	env := testEnv{
		flagsvc: newRecorder(t, nil), stats: newRecorder(t, nil), jobs: newRecorder(t, nil), ingest: newRecorder(t, nil),
	}
	cfg := Config{
		HTTPAddr: ":0", FlagsvcURL: env.flagsvc.srv.URL, StatsURL: env.stats.srv.URL, JobsURL: env.jobs.srv.URL,
		IngestURL: env.ingest.srv.URL, IngestQueryToken: "query-secret", ProxyTimeout: 5 * time.Second,
		LogLevel: "info", ShutdownTimeout: time.Second,
	}
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: health.NewRegistry(), Dist: testDist}
	if mutate != nil {
		mutate(&cfg, &opts)
	}
	opts.Config = cfg
	app, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	env.app = app
	return env
}

func do(t *testing.T, app *fiber.App, method, target string, body string, headers map[string]string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := app.Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProxyRoutes(t *testing.T) {
	env := newTestEnv(t, nil)
	cases := []struct {
		name, method, target, body string
		upstream                   func() *recorder
		wantPath, wantQuery        string
	}{
		{"flag service keeps its path", "GET", "/api/v1/projects/demo/flags?q=check&limit=5", "", func() *recorder { return env.flagsvc }, "/api/v1/projects/demo/flags", "q=check&limit=5"},
		{"flag service write with body", "PUT", "/api/v1/projects/demo/flags/f/environments/production", `{"on":true}`, func() *recorder { return env.flagsvc }, "/api/v1/projects/demo/flags/f/environments/production", ""},
		{"stats loses its prefix", "GET", "/stats/v1/projects/demo/experiments/x/results", "", func() *recorder { return env.stats }, "/v1/projects/demo/experiments/x/results", ""},
		{"stats refresh", "POST", "/stats/v1/projects/demo/experiments/x/refresh", "{}", func() *recorder { return env.stats }, "/v1/projects/demo/experiments/x/refresh", ""},
		{"jobs loses its prefix", "GET", "/jobs/v1/projects/demo/stale-flags", "", func() *recorder { return env.jobs }, "/v1/projects/demo/stale-flags", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, env.app, tc.method, tc.target, tc.body, map[string]string{
				"Authorization": "Bearer sy_user", "Content-Type": "application/json", "If-Match": `"3"`, "Cookie": "session=secret",
				"X-Switchyard-Comment": "rotating%20after%20a%20leak",
			})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
			}
			got := tc.upstream().last(t)
			want := recorded{Method: tc.method, Path: tc.wantPath, Query: tc.wantQuery, Auth: "Bearer sy_user", Body: tc.body, IfMatch: `"3"`,
				Comment: "rotating%20after%20a%20leak"}
			if got != want {
				t.Errorf("upstream got %+v, want %+v", got, want)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store (the upstream's caching must not leak through)", cc)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Error("an upstream cookie reached the browser")
			}
			if resp.Header.Get("ETag") != `"7"` {
				t.Errorf("ETag not passed through: %q", resp.Header.Get("ETag"))
			}
			if resp.Header.Get("Content-Security-Policy") != ContentSecurityPolicy {
				t.Error("API answers lack the Content-Security-Policy")
			}
			if body := readBody(t, resp); body != `{"ok":true}` {
				t.Errorf("body %q", body)
			}
		})
	}
}

func TestProxyRefusesEscapes(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, target := range []string{"/stats/v1/../metrics", "/stats/v1/%2e%2e/metrics", "/stats/metrics", "/jobs/healthz", "/api/v2/projects", "/usage/export"} {
		resp := do(t, env.app, "GET", target, "", map[string]string{"Authorization": "Bearer sy_user"})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", target, resp.StatusCode)
		}
	}
	if n := env.stats.count() + env.jobs.count() + env.flagsvc.count() + env.ingest.count(); n != 0 {
		t.Errorf("%d requests escaped to upstreams", n)
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	env := newTestEnv(t, func(c *Config, _ *Options) {
		c.StatsURL = "http://127.0.0.1:1" // nothing listens on port 1
		c.JobsURL = ""
	})
	cases := []struct{ target, wantMessage string }{
		{"/stats/v1/projects/demo/experiments/x/results", "the stats service did not answer"},
		{"/jobs/v1/projects/demo/stale-flags", "the jobs service is not configured on the dashboards server (set -jobs-url)"},
	}
	for _, tc := range cases {
		resp := do(t, env.app, "GET", tc.target, "", nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d, want 503", tc.target, resp.StatusCode)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if body.Error.Code != "unavailable" || !strings.HasPrefix(body.Error.Message, tc.wantMessage) {
			t.Errorf("%s: error %+v, want code unavailable and message starting %q", tc.target, body.Error, tc.wantMessage)
		}
	}
}

func TestProxyStreamsLargeBodies(t *testing.T) {
	const size = 8 << 20
	env := newTestEnv(t, nil)
	env.flagsvc = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for written := 0; written < size; written += len(chunk) {
			_, _ = w.Write(chunk)
		}
	})
	env = newTestEnv(t, func(c *Config, _ *Options) { c.FlagsvcURL = env.flagsvc.srv.URL })
	resp := do(t, env.app, "GET", "/api/v1/audit/export?format=csv", "", map[string]string{"Authorization": "Bearer x"})
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d bytes (err %v), want %d", n, err, size)
	}
	if resp.Header.Get("Content-Type") != "text/csv" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

func TestUsageGate(t *testing.T) {
	projects := `{"items":[{"key":"demo","environments":[{"id":"env-prod"},{"id":"env-dev"}]}]}`
	flagsvc := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthenticated","message":"bad token"}}`))
			return
		}
		_, _ = w.Write([]byte(projects))
	})
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	env := newTestEnv(t, func(c *Config, o *Options) {
		c.FlagsvcURL = flagsvc.srv.URL
		o.Now = func() time.Time { return now }
	})
	cases := []struct {
		name, target, auth string
		want               int
		forwarded          bool
	}{
		{"no token", "/usage/evaluations?environment_id=env-prod", "", 401, false},
		{"invalid token", "/usage/evaluations?environment_id=env-prod", "Bearer bad", 401, false},
		{"environment not visible", "/usage/evaluations?environment_id=env-other", "Bearer good", 404, false},
		{"no environment", "/usage/evaluations", "Bearer good", 422, false},
		{"unknown endpoint", "/usage/exposures?environment_id=env-prod", "Bearer good", 404, false},
		{"visible environment", "/usage/evaluations?environment_id=env-prod&flag_key=f&interval=day", "Bearer good", 200, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := env.ingest.count()
			resp := do(t, env.app, "GET", tc.target, "", map[string]string{"Authorization": tc.auth})
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, readBody(t, resp))
			}
			if forwarded := env.ingest.count() > before; forwarded != tc.forwarded {
				t.Fatalf("forwarded to ingest = %v, want %v", forwarded, tc.forwarded)
			}
			if tc.forwarded {
				got := env.ingest.last(t)
				if got.Path != "/v1/usage/evaluations" || got.Auth != "Bearer query-secret" || got.Query != "environment_id=env-prod&flag_key=f&interval=day" {
					t.Errorf("ingest got %+v: want the query token, never the user's", got)
				}
			}
		})
	}
	// The visibility answer is cached per token: a second call costs no flag-service call.
	calls := flagsvc.count()
	do(t, env.app, "GET", "/usage/contexts?environment_id=env-dev", "", map[string]string{"Authorization": "Bearer good"})
	if flagsvc.count() != calls {
		t.Error("the flag service was asked again within the cache lifetime")
	}
	now = now.Add(time.Minute)
	do(t, env.app, "GET", "/usage/contexts?environment_id=env-dev", "", map[string]string{"Authorization": "Bearer good"})
	if flagsvc.count() != calls+1 {
		t.Error("the cache outlived its lifetime")
	}
}

func TestUsageWithoutQueryToken(t *testing.T) {
	env := newTestEnv(t, func(c *Config, _ *Options) { c.IngestQueryToken = "" })
	resp := do(t, env.app, "GET", "/usage/evaluations?environment_id=e", "", map[string]string{"Authorization": "Bearer x"})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(readBody(t, resp), "-ingest-query-token") {
		t.Fatalf("status %d: want 503 naming -ingest-query-token", resp.StatusCode)
	}
}

func TestStaticSite(t *testing.T) {
	env := newTestEnv(t, nil)
	cases := []struct {
		name, target, acceptEncoding string
		wantStatus                   int
		wantType, wantCache          string
		wantGzip                     bool
		wantBody                     string
	}{
		{"root is the app", "/", "", 200, "text/html; charset=utf-8", "no-cache", false, `<div id="root">`},
		{"any page path is the app", "/p/demo/experiments/new-checkout-q4", "", 200, "text/html; charset=utf-8", "no-cache", false, `<div id="root">`},
		{"hashed asset, gzipped", "/assets/index-abc.js", "gzip, deflate, br", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", true, "console.log('switchyard');"},
		{"hashed asset, identity", "/assets/index-abc.js", "", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", false, "console.log('switchyard');"},
		{"gzip refused with q=0", "/assets/index-abc.js", "gzip;q=0", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", false, "console.log('switchyard');"},
		{"missing hashed asset", "/assets/index-old.js", "", 404, "", "", false, ""},
		{"missing file", "/robots.txt", "", 404, "", "", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, env.app, "GET", tc.target, "", map[string]string{"Accept-Encoding": tc.acceptEncoding})
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if resp.Header.Get("Content-Security-Policy") != ContentSecurityPolicy || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Error("security headers missing")
			}
			if tc.wantStatus != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.wantType {
				t.Errorf("Content-Type %q, want %q", ct, tc.wantType)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != tc.wantCache {
				t.Errorf("Cache-Control %q, want %q", cc, tc.wantCache)
			}
			body := resp.Body
			if gz := resp.Header.Get("Content-Encoding") == "gzip"; gz != tc.wantGzip {
				t.Fatalf("gzip = %v, want %v", gz, tc.wantGzip)
			} else if gz {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			b, _ := io.ReadAll(body)
			if !strings.Contains(string(b), tc.wantBody) {
				t.Errorf("body does not contain %q", tc.wantBody)
			}
		})
	}
}

// Without a built web app the server says so on every page and is not ready — the "no assets"
// case on purpose: it must be explicit, never a blank page.
func TestMissingWebApp(t *testing.T) {
	missing := errors.New("the web app is not built into this binary")
	env := newTestEnv(t, func(_ *Config, o *Options) { o.Dist, o.DistErr = nil, missing })
	resp := do(t, env.app, "GET", "/p/demo/flags", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(readBody(t, resp), "dashboards/scripts/build.sh") {
		t.Fatalf("status %d: want 503 with build instructions", resp.StatusCode)
	}
	resp = do(t, env.app, "GET", "/readyz", "", nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "the web app is not built into this binary") {
		t.Fatalf("/readyz %d %s: want 503 naming the missing web app", resp.StatusCode, body)
	}
	// The APIs still work.
	if resp := do(t, env.app, "GET", "/api/v1/me", "", nil); resp.StatusCode != 200 {
		t.Errorf("proxy status %d without the web app", resp.StatusCode)
	}
}

func TestReadyWithWebAppAndFlagService(t *testing.T) {
	env := newTestEnv(t, nil)
	resp := do(t, env.app, "GET", "/readyz", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz %d: %s", resp.StatusCode, readBody(t, resp))
	}
	env = newTestEnv(t, func(c *Config, _ *Options) { c.FlagsvcURL = "http://127.0.0.1:1" })
	if resp := do(t, env.app, "GET", "/readyz", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d with the flag service down, want 503", resp.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{HTTPAddr: ":8085", FlagsvcURL: "http://127.0.0.1:8080", StatsURL: "http://127.0.0.1:8083", ProxyTimeout: time.Second, LogLevel: "info", ShutdownTimeout: time.Second}
	}
	cases := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"optional upstream empty", func(c *Config) { c.StatsURL = "" }, ""},
		{"no flag service", func(c *Config) { c.FlagsvcURL = "" }, "invalid -flagsvc-url (SWITCHYARD_FLAGSVC_URL)"},
		{"relative URL", func(c *Config) { c.StatsURL = "127.0.0.1:8083" }, "invalid -stats-url (SWITCHYARD_STATS_URL): must be an absolute http(s) URL"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "invalid -log-level"},
		{"no timeout", func(c *Config) { c.ProxyTimeout = 0 }, "invalid -proxy-timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want prefix %q", err, tc.wantErr)
			}
		})
	}
}
