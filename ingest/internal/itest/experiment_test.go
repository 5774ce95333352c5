package itest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestExperimentQueryShapes checks the first-exposure aggregation and the per-variant metric
// sums the stats workers reuse, on data where every event is stored twice and some units
// convert before their first exposure (which must not count).
func TestExperimentQueryShapes(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	at := func(e ev, offsetMS int64) ev { e["timestamp"] = base + offsetMS; return e }
	var events []ev
	// 10 units: even ones in treatment, odd ones in control. Each is exposed twice; the first
	// exposure decides the variation (a later exposure to the other variation must not count).
	for i := 0; i < 10; i++ {
		u := fmt.Sprintf("u%d", i)
		first, second := "control", "treatment"
		if i%2 == 0 {
			first, second = "treatment", "control"
		}
		events = append(events, at(exposure(u, "checkout", first, "exp-1"), 1000), at(exposure(u, "checkout", second, "exp-1"), 5000))
	}
	// Conversions: u0 (treatment) buys 10 and 20 after exposure; u1 (control) buys 5 after;
	// u2 (treatment) bought 100 before its exposure (ignored); u3 buys a non-metric event.
	events = append(events,
		at(track("u0", "purchase", 10), 2000), at(track("u0", "purchase", 20), 3000),
		at(track("u1", "purchase", 5), 2000),
		at(track("u2", "purchase", 100), 500),
		at(track("u3", "signup", 1), 2000),
		at(track("stranger", "purchase", 50), 2000))
	sendAll(t, svc.URL, "k", events, 10, 20*time.Second)
	sendAll(t, svc.URL, "k", events, 10, 20*time.Second)
	s.waitDistinct(t, "exposures", 20, 20*time.Second)
	s.waitDistinct(t, "tracks", 6, 20*time.Second)
	s.waitFirstExposures(t, 10)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := chstore.ExperimentVariantSums(ctx, s.ch, "env-a", "exp-1", "purchase", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []chstore.VariantSums{
		{VariationKey: "control", N: 5, Converted: 1, Sum: 5, SumSquares: 25, Events: 1},
		{VariationKey: "treatment", N: 5, Converted: 1, Sum: 30, SumSquares: 900, Events: 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("variant sums\n got %+v\nwant %+v", got, want)
	}
	// First exposure per context: variation and time of the earliest exposure.
	var variation string
	var firstMS uint64
	if err := s.ch.QueryRow(ctx, `SELECT argMinMerge(first_variation), minMerge(first_exposed_ms) FROM experiment_units
		WHERE environment_id = 'env-a' AND experiment_key = 'exp-1' AND context_key = 'u3' GROUP BY context_kind, context_key`).Scan(&variation, &firstMS); err != nil {
		t.Fatal(err)
	}
	if variation != "control" || firstMS != uint64(base+1000) {
		t.Fatalf("first exposure of u3: %s at %d, want control at %d", variation, firstMS, base+1000)
	}
}
