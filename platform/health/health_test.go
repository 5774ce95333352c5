package health

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestReadyzReportsFailingDependency(t *testing.T) {
	checks := NewChecks()
	healthy := true
	checks.Add("postgres", func(context.Context) error { return nil })
	checks.Add("kafka", func(context.Context) error {
		if healthy {
			return nil
		}
		return errors.New("broker unreachable")
	})
	app := fiber.New()
	Mount(app, checks, NewRegistry())

	get := func(path string) (int, string) {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, _ := get("/readyz"); st != 200 {
		t.Fatalf("ready with healthy deps: status %d", st)
	}
	healthy = false
	st, body := get("/readyz")
	if st != 503 {
		t.Fatalf("want 503 with a failing dependency, got %d", st)
	}
	var parsed struct {
		Ready  bool     `json:"ready"`
		Checks []Result `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &parsed); err != nil || parsed.Ready {
		t.Fatalf("bad body %s", body)
	}
	if parsed.Checks[0].Name != "kafka" || parsed.Checks[0].OK || parsed.Checks[0].Error != "broker unreachable" {
		t.Fatalf("kafka check not reported: %+v", parsed.Checks)
	}
	if st, _ := get("/healthz"); st != 200 {
		t.Fatalf("healthz must not depend on dependencies, got %d", st)
	}
	if st, body := get("/metrics"); st != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d", st)
	}
}
