package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// experimentMetrics creates the metrics createExperiment's experiments name.
func experimentMetrics(s *stack, p string) {
	for _, m := range []map[string]any{
		{"key": "conversion", "kind": "proportion", "event_key": "purchase"},
		{"key": "revenue", "kind": "sum", "event_key": "purchase"},
		{"key": "errors", "kind": "count", "event_key": "error", "direction": "decrease"},
		{"key": "latency", "kind": "mean", "event_key": "page-load", "direction": "decrease"},
	} {
		s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", m, nil)
	}
}

func cuped(m domain.Metric) time.Duration {
	if m.CUPEDPreperiod == nil {
		return -1
	}
	return m.CUPEDPreperiod.Std()
}

func TestMetricCUPEDPreperiodDefaultsToSevenDays(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	base := "/api/v1/projects/" + p + "/metrics"
	week := 7 * 24 * time.Hour
	var m domain.Metric
	s.must(201, "POST", base, map[string]any{"key": "revenue", "kind": "sum", "event_key": "purchase"}, &m)
	if cuped(m) != week {
		t.Fatalf("a metric created without cuped_preperiod: %v, want 7 days", cuped(m))
	}
	s.must(200, "GET", base+"/revenue", nil, &m)
	if cuped(m) != week {
		t.Fatalf("stored: %v", cuped(m))
	}
	s.must(201, "POST", base, map[string]any{"key": "orders", "kind": "count", "event_key": "purchase", "cuped_preperiod": "0s"}, &m)
	if cuped(m) != 0 {
		t.Fatalf("an explicit 0s keeps CUPED off: %v", cuped(m))
	}
	// A new version without the field gets the default too; with "0s" it stays off.
	s.must(200, "PUT", base+"/orders", map[string]any{"kind": "count", "event_key": "purchase", "name": "Orders"}, &m)
	if cuped(m) != week || m.Version != 2 {
		t.Fatalf("a new version without cuped_preperiod: %v (version %d)", cuped(m), m.Version)
	}
	s.must(200, "PUT", base+"/orders", map[string]any{"kind": "count", "event_key": "purchase", "cuped_preperiod": "0s"}, &m)
	if cuped(m) != 0 {
		t.Fatalf("a new version with 0s: %v", cuped(m))
	}
	// Ratios have no CUPED, so no default pre-period either.
	s.must(201, "POST", base, map[string]any{"key": "aov", "kind": "ratio", "numerator": "revenue", "denominator": "orders"}, &m)
	if cuped(m) != 0 {
		t.Fatalf("ratio: %v", cuped(m))
	}
}

func TestRatioMetricRejectsItsOwnWindowAndFilters(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	base := "/api/v1/projects/" + p + "/metrics"
	s.must(201, "POST", base, map[string]any{"key": "revenue", "kind": "sum", "event_key": "purchase"}, nil)
	s.must(201, "POST", base, map[string]any{"key": "orders", "kind": "count", "event_key": "purchase"}, nil)
	ratio := map[string]any{"key": "aov", "kind": "ratio", "numerator": "revenue", "denominator": "orders"}
	for name, tc := range map[string]struct {
		extra map[string]any
		field string
	}{
		"window":    {map[string]any{"window": map[string]any{"start": "0s", "end": "24h"}}, "window"},
		"filters":   {map[string]any{"filters": []any{map[string]any{"property": "currency", "op": "eq", "values": []any{"EUR"}}}}, "filters"},
		"winsorize": {map[string]any{"winsorize": map[string]any{"type": "absolute", "upper": 100}}, "winsorize.type"},
	} {
		t.Run(name, func(t *testing.T) {
			body := map[string]any{}
			for k, v := range ratio {
				body[k] = v
			}
			for k, v := range tc.extra {
				body[k] = v
			}
			r := s.req("POST", base, s.owner, body)
			if r.Status != 422 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if e := r.errorBody(t); e.Field != tc.field || !strings.Contains(e.Message, "numerator") {
				t.Fatalf("error %+v, want field %q naming the parts", e, tc.field)
			}
		})
	}
	var m domain.Metric
	s.must(201, "POST", base, ratio, &m)
	if m.Window != (domain.MetricWindow{}) || len(m.Filters) != 0 {
		t.Fatalf("a ratio has no window or filters of its own: %+v", m)
	}
	// The definition it answers, less its server-set fields, can be sent back as the next version.
	raw, _ := json.Marshal(m)
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	delete(back, "archived")
	delete(back, "created_at")
	delete(back, "updated_at")
	s.must(200, "PUT", base+"/aov", back, &m)
	if m.Version != 2 {
		t.Fatalf("round trip: %+v", m)
	}
	if r := s.req("PUT", base+"/aov", s.owner, map[string]any{"kind": "ratio", "numerator": "revenue", "denominator": "orders",
		"window": map[string]any{"start": "0s", "end": "168h"}}); r.Status != 422 || r.errorBody(t).Field != "window" {
		t.Fatalf("a new version with a window: %d %s", r.Status, r.Body)
	}
}

func TestConcludingAStoppedExperimentLeavesAnotherExperimentsRollout(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	experimentMetrics(s, p)
	xp := "/api/v1/projects/" + p + "/experiments"
	createExperiment(s, p, "first", "checkout", nil)
	s.must(200, "POST", xp+"/first/start", nil, nil)
	s.must(200, "POST", xp+"/first/stop", nil, nil)
	second := createExperiment(s, p, "second", "checkout", nil)
	s.must(200, "POST", xp+"/second/start", nil, nil)
	var before domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &before)

	var x domain.Experiment
	s.must(200, "POST", xp+"/first/conclude", map[string]any{"outcome": "ship", "variation": "on", "rationale": "won"}, &x)
	if x.Status != "concluded" || x.Decision == nil || x.Decision.Outcome != "ship" || x.Decision.Variation != "on" {
		t.Fatalf("the decision is recorded: %+v", x.Decision)
	}
	if !strings.Contains(x.Decision.FlagUnchanged, `experiment "second"`) {
		t.Fatalf("the response says the flag was left alone, and why: %q", x.Decision.FlagUnchanged)
	}
	var after domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &after)
	ro := after.Fallthrough.Rollout
	if after.Version != before.Version || ro == nil || ro.ExperimentKey != "second" || ro.Salt != second.Salt {
		t.Fatalf("the running experiment's rollout must stay: version %d→%d, %+v", before.Version, after.Version, after.Fallthrough)
	}
	// The experiment that owns the rollout still concludes as before.
	var y domain.Experiment
	s.must(200, "POST", xp+"/second/conclude", map[string]any{"outcome": "rollback", "rationale": "no lift"}, &y)
	var rolledBack domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &rolledBack)
	if y.Decision.FlagUnchanged != "" || rolledBack.Fallthrough.Rollout != nil || rolledBack.Fallthrough.Variation != "off" {
		t.Fatalf("rollback of the owner: %q %+v", y.Decision.FlagUnchanged, rolledBack.Fallthrough)
	}
}

func TestRunningExperimentKeepsItsGuardrailsAndDesign(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	experimentMetrics(s, p)
	xp := "/api/v1/projects/" + p + "/experiments/checkout-q4"
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	s.must(200, "POST", xp+"/start", nil, nil)
	metrics := func(guardrail map[string]any) map[string]any {
		return map[string]any{"metrics": map[string]any{"primary": []string{"conversion"}, "secondary": []string{"revenue"},
			"guardrails": []any{guardrail}}}
	}
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"guardrail tolerance": {metrics(map[string]any{"metric": "errors", "tolerance": 0.5, "action": "rollback"}), "metrics.guardrails"},
		"guardrail action":    {metrics(map[string]any{"metric": "errors", "tolerance": 0.02, "action": "alert"}), "metrics.guardrails"},
		"guardrail metric":    {metrics(map[string]any{"metric": "latency", "tolerance": 0.02, "action": "rollback"}), "metrics.guardrails"},
		"guardrail removed":   {map[string]any{"metrics": map[string]any{"primary": []string{"conversion"}}}, "metrics.guardrails"},
		"primary":             {map[string]any{"metrics": map[string]any{"primary": []string{"revenue"}}}, "metrics.primary"},
		"analysis":            {map[string]any{"analysis": map[string]any{"cuped": false}}, "analysis"},
		"variations":          {map[string]any{"variations": []any{map[string]any{"variation": "off", "weight": 10000}, map[string]any{"variation": "on", "weight": 90000}}}, "variations"},
		"control":             {map[string]any{"control": "on"}, "control"},
		"context kind":        {map[string]any{"context_kind": "org"}, "context_kind"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.req("PATCH", xp, s.owner, tc.body)
			if r.Status != 412 || r.errorBody(t).Field != tc.field {
				t.Fatalf("%d %s (want 412 naming %s)", r.Status, r.Body, tc.field)
			}
		})
	}
	// The same guardrails, with a secondary metric added, are fine.
	var x domain.Experiment
	s.must(200, "PATCH", xp, map[string]any{"metrics": map[string]any{"primary": []string{"conversion"}, "secondary": []string{"revenue", "latency"},
		"guardrails": []any{map[string]any{"metric": "errors", "tolerance": 0.02, "action": "rollback"}}}}, &x)
	if len(x.Metrics.Secondary) != 2 || x.MetricVersions["latency"] != 1 || x.Metrics.Guardrails[0].Tolerance != 0.02 {
		t.Fatalf("secondary metric added: %+v %v", x.Metrics, x.MetricVersions)
	}
	var gs struct {
		Items []domain.Guardrail `json:"items"`
	}
	s.must(200, "GET", "/api/v1/guardrails?status=active", nil, &gs)
	if len(gs.Items) != 1 || gs.Items[0].Metric != "errors" || gs.Items[0].Tolerance != 0.02 {
		t.Fatalf("the enforced guardrail matches the experiment's: %+v", gs.Items)
	}
}

func TestExperimentSaltIsUniqueInItsProject(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	s.boolFlag(p, "banner")
	experimentMetrics(s, p)
	createExperiment(s, p, "checkout-q4", "checkout", map[string]any{"salt": "shared"})
	body := map[string]any{"key": "banner-q4", "environment": "staging", "flag": "banner", "control": "off", "salt": "shared",
		"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
		"metrics":    map[string]any{"primary": []string{"conversion"}}}
	// Another flag and environment: the hash has neither, so the assignments would still match.
	r := s.req("POST", "/api/v1/projects/"+p+"/experiments", s.owner, body)
	if r.Status != 409 {
		t.Fatalf("a second experiment with the same salt: %d %s", r.Status, r.Body)
	}
	if e := r.errorBody(t); e.Field != "salt" || !strings.Contains(e.Message, `"checkout-q4"`) {
		t.Fatalf("the error names the field and the other experiment: %+v", e)
	}
	body["salt"] = "banner-own"
	s.must(201, "POST", "/api/v1/projects/"+p+"/experiments", body, nil)
	// Experiments without a salt get a random one each.
	a := createExperiment(s, p, "a", "checkout", nil)
	b := createExperiment(s, p, "b", "checkout", nil)
	if a.Salt == b.Salt || a.Salt == "" {
		t.Fatalf("generated salts: %q %q", a.Salt, b.Salt)
	}
}
