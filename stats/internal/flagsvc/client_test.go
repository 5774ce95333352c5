package flagsvc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestMetricVersionMissingIsNotFound: a recorded metric version the flag service does not list
// is ErrNotFound, so the results worker reports that one metric instead of failing the refresh.
func TestMetricVersionMissingIsNotFound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/projects/shop/metrics/revenue/versions" || r.Header.Get("Authorization") != "Bearer svc" {
			http.Error(w, `{"error":{"code":"not_found"}}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[{"version":2,"definition":{"kind":"sum","event_key":"purchase"}},{"version":1,"definition":{"kind":"sum","event_key":"buy"}}]}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "svc", "")
	m, err := c.MetricVersion(context.Background(), "shop", "revenue", 1)
	if err != nil || m.Version != 1 || m.Key != "revenue" {
		t.Fatalf("version 1: %+v %v", m, err)
	}
	if _, err := c.MetricVersion(context.Background(), "shop", "revenue", 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a version the service does not have: %v, want ErrNotFound", err)
	}
}

// TestExperimentsStoppedAfterAsksForTheWindow: the recently stopped experiments are asked for
// with stopped_after (RFC 3339, UTC), so the flag service answers only those.
func TestExperimentsStoppedAfterAsksForTheWindow(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RawQuery
		_, _ = w.Write([]byte(`{"items":[{"id":"x1","key":"checkout","status":"concluded"}]}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "svc", "")
	at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.FixedZone("", 3600))
	xs, err := c.ExperimentsStoppedAfter(context.Background(), "concluded", at)
	if err != nil || len(xs) != 1 || xs[0].Key != "checkout" {
		t.Fatalf("%+v %v", xs, err)
	}
	if want := "status=concluded&stopped_after=2026-03-04T04%3A06%3A07.000008Z"; got != want {
		t.Fatalf("query %q, want %q", got, want)
	}
}
