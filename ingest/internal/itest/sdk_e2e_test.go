package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// TestGoSDKEndToEnd runs the Go SDK against the collector: it evaluates an experiment flag for
// 60 users (twice each: the SDK deduplicates exposures, and counts both evaluations in its
// summary), tracks purchases for some of them, flushes, and finds exactly those events in
// ClickHouse — exposures with the variations the SDK served, tracks with their values, the
// evaluation counts, and per-variant sums that match what the test computed locally.
func TestGoSDKEndToEnd(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-sdk", 1, sdkKey{raw: "sdk-e2e-key", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})

	td := switchyard.NewTestData()
	td.SetFlag(ruleset.Flag{Key: "new-checkout", Kind: ruleset.KindBoolean, On: true,
		Variations: []ruleset.Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
		Fallthrough: ruleset.Serve{Rollout: &ruleset.Rollout{ExperimentKey: "exp-checkout", Salt: "exp-salt",
			Variations: []ruleset.WeightedVariation{{Variation: "on", Weight: ruleset.WeightScale / 2}, {Variation: "off", Weight: ruleset.WeightScale / 2}}}}})
	client, err := switchyard.New(switchyard.Config{SDKKey: "sdk-e2e-key", DataSource: td, EventsURL: svc.URL})
	if client == nil {
		t.Fatalf("sdk client: %v", err)
	}
	defer client.Close()

	const users = 60
	served := map[string]string{}
	type sums struct {
		n, converted int
		sum, sq      float64
	}
	want := map[string]*sums{"on": {}, "off": {}}
	tracks := 0
	for i := 0; i < users; i++ {
		ctx := switchyard.NewContext(fmt.Sprintf("user-%d", i))
		d := client.BoolDetail(ctx, "new-checkout", false)
		client.Bool(ctx, "new-checkout", false) // same context again: one exposure, two evaluations
		served[fmt.Sprintf("user-%d", i)] = d.Variation
		w := want[d.Variation]
		if w == nil {
			t.Fatalf("user-%d served %q (%s)", i, d.Variation, d.Reason)
		}
		w.n++
		if i%3 == 0 {
			value := float64(10 + i)
			client.Track(ctx, "purchase", value)
			tracks++
			w.converted++
			w.sum += value
			w.sq += value * value
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.FlushAndWait(fctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	s.waitDistinct(t, "exposures", users, 30*time.Second)
	s.waitDistinct(t, "tracks", tracks, 30*time.Second)
	s.waitFirstExposures(t, users)

	rows, err := s.ch.Query(fctx, "SELECT context_key, any(variation_key), any(experiment_key), any(environment_id), any(sdk_name) FROM exposures GROUP BY context_key")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var key, variation, exp, env, sdk string
		if err := rows.Scan(&key, &variation, &exp, &env, &sdk); err != nil {
			t.Fatal(err)
		}
		if served[key] != variation || exp != "exp-checkout" || env != "env-sdk" || sdk != "switchyard-go" {
			t.Fatalf("exposure of %s: %s/%s/%s/%s, SDK served %s", key, variation, exp, env, sdk, served[key])
		}
	}
	rows.Close()
	// Both evaluations per user are counted in the SDK's summary, exactly once.
	evals := func() uint64 {
		return s.count(t, `SELECT sum(c) FROM (SELECT any(count) AS c FROM evaluation_summaries
			WHERE environment_id = 'env-sdk' AND flag_key = 'new-checkout' GROUP BY event_id, flag_key, variation_key, flag_version)`)
	}
	testenv.Eventually(t, 30*time.Second, "evaluation summary", func() bool { return evals() >= 2*users })
	if got := evals(); got != 2*users {
		t.Fatalf("evaluation count %d, want %d", got, 2*users)
	}
	got, err := chstore.ExperimentVariantSums(fctx, s.ch, "env-sdk", "exp-checkout", "purchase", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("variant sums %+v", got)
	}
	for _, v := range got {
		w := want[v.VariationKey]
		if int(v.N) != w.n || int(v.Converted) != w.converted || v.Sum != w.sum || v.SumSquares != w.sq {
			t.Fatalf("variant %s: got %+v, want n %d converted %d sum %v sum_squares %v", v.VariationKey, v, w.n, w.converted, w.sum, w.sq)
		}
	}
}
