package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/stats/internal/refcases"
)

func testApp(t *testing.T) *fiber.App {
	t.Helper()
	cfg := Config{BodyLimit: 1 << 20}
	return New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), health.NewRegistry())
}

func do(t *testing.T, app *fiber.App, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func TestReferenceCasesOverHTTP(t *testing.T) {
	cases, err := refcases.Load()
	if err != nil {
		t.Fatal(err)
	}
	app := testApp(t)
	for _, c := range cases {
		t.Run(c.ID+" "+c.Name, func(t *testing.T) {
			status, body := do(t, app, "POST", "/v1/"+c.Command, "application/json", c.Request)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			for _, p := range c.Check(body) {
				t.Error(p)
			}
		})
	}
}

func TestInvalidRequestsAre400NamingTheField(t *testing.T) {
	tests := []struct {
		name, path, contentType, body, field string
	}{
		{"negative n", "/v1/analyze", "application/json", `{"metrics":[{"key":"m","kind":"proportion","variants":[{"key":"a","n":-1,"sum":0},{"key":"b","n":3,"sum":1}]}]}`, "metrics[0].variants[0].n"},
		{"unknown kind", "/v1/analyze", "", `{"metrics":[{"key":"m","kind":"avg","variants":[]}]}`, "metrics[0].kind"},
		{"alpha", "/v1/analyze", "application/json; charset=utf-8", `{"alpha":2,"metrics":[]}`, "alpha"},
		{"malformed", "/v1/analyze", "application/json", `{"metrics":`, ""},
		{"power", "/v1/power", "application/json", `{"mean":1,"variance":-1,"users":10}`, "variance"},
		{"content type", "/v1/power", "text/plain", `{}`, "Content-Type"},
	}
	app := testApp(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, app, "POST", tc.path, tc.contentType, []byte(tc.body))
			if status != 400 {
				t.Fatalf("status %d, want 400: %s", status, body)
			}
			var e httpapi.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("not the uniform error body: %s", body)
			}
			if e.Error.Code != "invalid_argument" || e.Error.Field != tc.field || e.Error.Message == "" {
				t.Errorf("error %+v, want invalid_argument on %q", e.Error, tc.field)
			}
		})
	}
}

func TestOperationalEndpointsAndMetrics(t *testing.T) {
	app := testApp(t)
	req := `{"metrics":[{"key":"m","kind":"proportion","variants":[{"key":"a","n":100,"sum":0},{"key":"b","n":100,"sum":0},{"key":"c","n":100,"sum":3}]}]}`
	if status, body := do(t, app, "POST", "/v1/analyze", "application/json", []byte(req)); status != 200 {
		t.Fatalf("analyze: %d %s", status, body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := do(t, app, "GET", path, "", nil); status != 200 {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
	status, body := do(t, app, "GET", "/metrics", "", nil)
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	for _, want := range []string{"stats_comparisons_total 2", `stats_variant_errors_total{code="zero_baseline"} 2`, `http_requests_total{method="POST",route="/v1/analyze",status="200"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if status, _ := do(t, app, "GET", "/v1/analyze", "", nil); status != 405 && status != 404 {
		t.Errorf("GET /v1/analyze: %d, want 404 or 405", status)
	}
}

// The service really listens, answers, and stops cleanly when its context ends.
func TestServerServesAndDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httpapi.Server{App: testApp(t), Listener: ln, ShutdownTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	body := `{"mean":10,"variance":3909.9997749994377,"effect":0.05,"users":400000,"variants":3}`
	resp, err := nethttp.Post("http://"+ln.Addr().String()+"/v1/power", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Power, MDE float64 }
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || got.Power < 0.52 || got.Power > 0.53 {
		t.Fatalf("status %d, %+v, %v", resp.StatusCode, got, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10 s of its context ending")
	}
}

func TestConfig(t *testing.T) {
	var cfg Config
	if err := config.Load("stats serve", &cfg, nil); err != nil || cfg.HTTPAddr != DefaultAddr {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	t.Setenv("SWITCHYARD_HTTP_ADDR", "127.0.0.1:9999")
	if err := config.Load("stats serve", &cfg, nil); err != nil || cfg.HTTPAddr != "127.0.0.1:9999" {
		t.Errorf("env: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{{"-log-level", "loud"}, {"-shutdown-timeout", "0s"}, {"-body-limit", "10"}, {"-http-addr", " "}} {
		if err := config.Load("stats serve", &cfg, args); err == nil {
			t.Errorf("%v should be rejected", args)
		}
	}
}
