package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/platform/errs"
)

type payload struct {
	Name   string   `json:"name"`
	Weight int      `json:"weight"`
	Tags   []string `json:"tags"`
}

func newTestApp(t *testing.T) *fiber.App {
	t.Helper()
	app := New(Options{Service: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()})
	app.Post("/things", func(c *fiber.Ctx) error {
		var p payload
		if err := DecodeJSON(c, &p); err != nil {
			return err
		}
		if p.Weight > 100 {
			return errs.Invalid("weight", "must be at most 100")
		}
		return c.JSON(p)
	})
	app.Get("/boom", func(c *fiber.Ctx) error { return errors.New("secret database detail") })
	app.Get("/panic", func(c *fiber.Ctx) error { panic("oops") })
	app.Get("/locked", func(c *fiber.Ctx) error { return errs.PreconditionFailed("environment", "production is locked") })
	return app
}

func TestErrorShapes(t *testing.T) {
	app := newTestApp(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		code, field              string
		notContains              string
	}{
		{"valid", "POST", "/things", `{"name":"a","weight":1}`, 200, "", "", ""},
		{"syntax error", "POST", "/things", `{"name":`, 400, "invalid_argument", "", ""},
		{"unknown field", "POST", "/things", `{"name":"a","colour":"red"}`, 400, "invalid_argument", "colour", ""},
		{"wrong type", "POST", "/things", `{"name":"a","weight":"heavy"}`, 400, "invalid_argument", "weight", ""},
		{"wrong nested type", "POST", "/things", `{"tags":[1]}`, 400, "invalid_argument", "tags", ""},
		{"trailing data", "POST", "/things", `{"name":"a"} {}`, 400, "invalid_argument", "", ""},
		{"empty body", "POST", "/things", ``, 400, "invalid_argument", "", ""},
		{"rule broken", "POST", "/things", `{"weight":101}`, 422, "validation_failed", "weight", ""},
		{"internal hidden", "GET", "/boom", "", 500, "internal", "", "secret"},
		{"panic recovered", "GET", "/panic", "", 500, "internal", "", "oops"},
		{"precondition", "GET", "/locked", "", 412, "failed_precondition", "environment", ""},
		{"unknown route", "GET", "/nope", "", 404, "not_found", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
			}
			if tc.code == "" {
				return
			}
			var body ErrorBody
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("error body is not the uniform shape: %s", raw)
			}
			if body.Error.Code != tc.code || body.Error.Field != tc.field || body.Error.Message == "" {
				t.Fatalf("got %+v, want code %q field %q", body.Error, tc.code, tc.field)
			}
			if tc.notContains != "" && strings.Contains(string(raw), tc.notContains) {
				t.Fatalf("response leaks %q: %s", tc.notContains, raw)
			}
		})
	}
}

// TestKindForStatus: a 4xx answer maps back to the kind that produced it, any 5xx is
// unavailable (retryable), anything else internal.
func TestKindForStatus(t *testing.T) {
	for k := errs.KindInternal; k.Code() != ""; k++ {
		if st := Status(k); st < 500 && KindForStatus(st) != k {
			t.Errorf("KindForStatus(Status(%s) = %d) = %s", k, st, KindForStatus(st))
		}
	}
	for st, want := range map[int]errs.Kind{500: errs.KindUnavailable, 502: errs.KindUnavailable, 503: errs.KindUnavailable,
		418: errs.KindInternal, 302: errs.KindInternal} {
		if got := KindForStatus(st); got != want {
			t.Errorf("KindForStatus(%d) = %s, want %s", st, got, want)
		}
	}
}

// TestDecodeRefusesNUL: a string with the NUL character (which Postgres stores neither in text
// nor in jsonb) is refused when a body is decoded, naming its field, instead of failing as an
// internal error when it is written.
func TestDecodeRefusesNUL(t *testing.T) {
	type item struct {
		Key   string         `json:"key"`
		Attrs map[string]any `json:"attrs"`
	}
	type body struct {
		Name  string `json:"name"`
		Items []item `json:"items"`
	}
	for _, tc := range []struct{ doc, field string }{
		{`{"name":"a\u0000b"}`, "name"},
		{`{"name":"ok","items":[{"key":"x"},{"key":"\u0000"}]}`, "items[1].key"},
		{`{"items":[{"key":"x","attrs":{"plan":["pro","\u0000"]}}]}`, "items[0].attrs.plan[1]"},
		{`{"items":[{"key":"x","attrs":{"a\u0000":1}}]}`, "items[0].attrs.a\x00"},
	} {
		var v body
		err := Decode([]byte(tc.doc), &v)
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != errs.KindInvalid || e.Field != tc.field {
			t.Errorf("%s: %v, want Invalid naming %q", tc.doc, err, tc.field)
		}
	}
	// A backslash before u0000 is text, not the NUL escape.
	var v body
	if err := Decode([]byte(`{"name":"C:\\u0000"}`), &v); err != nil || v.Name != `C:\u0000` {
		t.Fatalf("an escaped backslash: %v (%q)", err, v.Name)
	}
}
