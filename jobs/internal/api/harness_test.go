package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/authz"
	"github.com/switchyard-io/switchyard/jobs/internal/chtest"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/schedule"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/jobs/internal/slack"
	"github.com/switchyard-io/switchyard/jobs/internal/slack/slacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/stacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/stale"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const slackToken = "xoxb-jobs-api-test"

// harness is a real flag service (process), the jobs API in process on a fresh Postgres
// database and ClickHouse database, the scheduled-change executor and alert dispatcher with a
// test clock, and a fake Slack.
type harness struct {
	fs       *stacktest.FlagService
	store    *postgres.Store
	clock    *clock
	app      *fiber.App
	exec     *schedule.Executor
	dispatch *alert.Dispatcher
	slack    *slacktest.Server
	// service is the jobs service's own token (admin service token).
	service string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fs := stacktest.StartFlagService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, testenv.PostgresDB(t), 8, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	st.DefaultChannel = "C-DEFAULT"
	clk := &clock{t: time.Now().UTC()}
	st.SetClock(clk.now)
	ch, _ := chtest.Database(t)
	h := &harness{fs: fs, store: st, clock: clk}
	h.service = fs.ServiceToken(t, "jobs", "admin", "", "")
	client := flagsvc.New(fs.URL, h.service, "")
	log := slog.New(slog.DiscardHandler)
	h.slack = slacktest.New(slackToken)
	t.Cleanup(h.slack.Close)
	h.dispatch = alert.NewDispatcher(st, slack.New(slack.Config{Token: slackToken, APIURL: h.slack.URL}), log, "test", nil)
	h.dispatch.Now = clk.now
	h.exec = schedule.NewExecutor(st, client, log, nil)
	h.exec.Now = clk.now
	h.exec.DashboardURL = "https://dash.example.com"
	reporter := &stale.Reporter{Settings: st, CH: ch, Defaults: settings.DefaultThresholds, Now: clk.now}
	h.app = httpapi.New(httpapi.Options{Service: "jobs", Logger: log})
	Mount(h.app, Deps{Store: st, Flags: client, Auth: authz.New(client), Reporter: reporter, Now: clk.now})

	owner := fs.Owner
	owner.Must(t, "POST", "/api/v1/projects", map[string]any{"key": "shop", "name": "Shop"}, nil)
	owner.Must(t, "POST", "/api/v1/projects/shop/flags", map[string]any{"key": "checkout", "name": "Checkout", "kind": "boolean",
		"variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, nil)
	return h
}

// call sends a request to the jobs API (in process).
func (h *harness) call(t *testing.T, token, method, path string, body any) stacktest.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return stacktest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

func (h *harness) must(t *testing.T, status int, token, method, path string, body, out any) {
	t.Helper()
	r := h.call(t, token, method, path, body)
	if r.Status != status {
		t.Fatalf("%s %s: %d %s (want %d)", method, path, r.Status, r.Body, status)
	}
	if out != nil {
		r.Decode(t, out)
	}
}

// config reads the flag's configuration in an environment from the flag service.
func (h *harness) config(t *testing.T, env string) flagsvc.FlagEnvironment {
	t.Helper()
	var fe flagsvc.FlagEnvironment
	h.fs.Owner.Must(t, "GET", stacktest.ConfigPath("shop", "checkout", env), nil, &fe)
	return fe
}

func (h *harness) history(t *testing.T, env string) []flagsvc.ConfigVersion {
	t.Helper()
	var page struct {
		Items []flagsvc.ConfigVersion `json:"items"`
	}
	h.fs.Owner.Must(t, "GET", stacktest.ConfigPath("shop", "checkout", env)+"/history", nil, &page)
	return page.Items
}

func (h *harness) runDue(t *testing.T) int {
	t.Helper()
	n, err := h.exec.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (h *harness) deliverAll(t *testing.T) {
	t.Helper()
	for {
		more, err := h.dispatch.DeliverOne(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return
		}
	}
}

// newBareApp mounts the routes without dependencies (route listing only).
func newBareApp() *fiber.App {
	app := httpapi.New(httpapi.Options{Service: "jobs", Logger: slog.New(slog.DiscardHandler)})
	Mount(app, Deps{})
	return app
}
