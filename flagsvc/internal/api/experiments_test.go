package api_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

func TestMetricCatalogValidationAndVersions(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	base := "/api/v1/projects/" + p + "/metrics"
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"unknown kind":       {map[string]any{"key": "a", "kind": "median", "event_key": "e"}, "kind"},
		"no event key":       {map[string]any{"key": "a", "kind": "proportion"}, "event_key"},
		"window backwards":   {map[string]any{"key": "a", "kind": "count", "event_key": "e", "window": map[string]any{"start": "48h", "end": "24h"}}, "window"},
		"bad duration":       {map[string]any{"key": "a", "kind": "count", "event_key": "e", "window": map[string]any{"start": "0s", "end": "a week"}}, "window.end"},
		"filter op":          {map[string]any{"key": "a", "kind": "count", "event_key": "e", "filters": []any{map[string]any{"property": "p", "op": "like", "values": []any{"x"}}}}, "filters[0].op"},
		"numeric filter":     {map[string]any{"key": "a", "kind": "count", "event_key": "e", "filters": []any{map[string]any{"property": "p", "op": "gt", "values": []any{"ten"}}}}, "filters[0].values[0]"},
		"percentile cap":     {map[string]any{"key": "a", "kind": "sum", "event_key": "e", "winsorize": map[string]any{"type": "percentile", "upper": 1.5}}, "winsorize.upper"},
		"direction":          {map[string]any{"key": "a", "kind": "sum", "event_key": "e", "direction": "up"}, "direction"},
		"ratio unknown part": {map[string]any{"key": "r", "kind": "ratio", "numerator": "nope", "denominator": "nope2"}, "numerator"},
		"ratio with CUPED":   {map[string]any{"key": "r", "kind": "ratio", "numerator": "x", "denominator": "y", "cuped_preperiod": "168h"}, "cuped_preperiod"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.req("POST", base, s.owner, tc.body)
			if r.Status != 422 && r.Status != 400 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if e := r.errorBody(t); e.Field != tc.field {
				t.Fatalf("field %q, want %q (%s)", e.Field, tc.field, e.Message)
			}
		})
	}
	var m domain.Metric
	s.must(201, "POST", base, map[string]any{"key": "revenue", "kind": "sum", "event_key": "purchase",
		"winsorize": map[string]any{"type": "percentile", "upper": 0.99}, "filters": []any{map[string]any{"property": "currency", "op": "in", "values": []any{"EUR"}}}}, &m)
	if m.Version != 1 || m.Window.End.Std().Hours() != 168 || m.Direction != "increase" {
		t.Fatalf("defaults: %+v", m)
	}
	s.must(201, "POST", base, map[string]any{"key": "orders", "kind": "count", "event_key": "purchase"}, nil)
	s.must(201, "POST", base, map[string]any{"key": "aov", "kind": "ratio", "numerator": "revenue", "denominator": "orders", "cuped_preperiod": "0s"}, nil)
	s.must(200, "PUT", base+"/revenue", map[string]any{"kind": "sum", "event_key": "purchase", "name": "Revenue (EUR)", "version": 1}, &m)
	if m.Version != 2 || m.Name != "Revenue (EUR)" {
		t.Fatalf("update: %+v", m)
	}
	if r := s.req("PUT", base+"/revenue", s.owner, map[string]any{"kind": "count", "event_key": "purchase"}); r.Status != 422 || r.errorBody(t).Field != "kind" {
		t.Fatalf("kind change: %d %s", r.Status, r.Body)
	}
	if r := s.req("PUT", base+"/revenue", s.owner, map[string]any{"kind": "sum", "event_key": "purchase", "version": 1}); r.Status != 409 {
		t.Fatalf("stale update: %d", r.Status)
	}
	var versions struct {
		Items []struct {
			Version    int64         `json:"version"`
			Definition domain.Metric `json:"definition"`
		} `json:"items"`
	}
	s.must(200, "GET", base+"/revenue/versions", nil, &versions)
	if len(versions.Items) != 2 || versions.Items[1].Definition.Name != "revenue" || versions.Items[0].Definition.Name != "Revenue (EUR)" {
		t.Fatalf("versions: %+v", versions.Items)
	}
	s.must(204, "DELETE", base+"/orders", nil, nil)
	var listed struct {
		Items []domain.Metric `json:"items"`
	}
	s.must(200, "GET", base, nil, &listed)
	if len(listed.Items) != 2 {
		t.Fatalf("archived metrics are hidden: %d", len(listed.Items))
	}
}

func createExperiment(s *stack, p, key, flag string, extra map[string]any) domain.Experiment {
	body := map[string]any{"key": key, "name": "Checkout test", "hypothesis": "One page converts better", "environment": "production",
		"flag": flag, "control": "off",
		"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
		"metrics": map[string]any{"primary": []string{"conversion"}, "secondary": []string{"revenue"},
			"guardrails": []any{map[string]any{"metric": "errors", "tolerance": 0.02, "action": "rollback"}}},
		"analysis": map[string]any{"sequential": true, "cuped": true}}
	for k, v := range extra {
		body[k] = v
	}
	var x domain.Experiment
	s.must(201, "POST", "/api/v1/projects/"+p+"/experiments", body, &x)
	return x
}

func TestExperimentLifecycle(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	for _, m := range []map[string]any{
		{"key": "conversion", "kind": "proportion", "event_key": "purchase"},
		{"key": "revenue", "kind": "sum", "event_key": "purchase"},
		{"key": "errors", "kind": "count", "event_key": "error", "direction": "decrease"},
	} {
		s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", m, nil)
	}
	xp := "/api/v1/projects/" + p + "/experiments"
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"weights":         {map[string]any{"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 40000}}}, "variations"},
		"control missing": {map[string]any{"control": "maybe"}, "control"},
		"unknown metric":  {map[string]any{"metrics": map[string]any{"primary": []string{"nope"}}}, "metrics.primary[0]"},
		"no primary":      {map[string]any{"metrics": map[string]any{"primary": []string{}}}, "metrics.primary"},
		"bad tolerance":   {map[string]any{"metrics": map[string]any{"primary": []string{"conversion"}, "guardrails": []any{map[string]any{"metric": "errors", "tolerance": 2}}}}, "metrics.guardrails[0].tolerance"},
		"bayesian seq":    {map[string]any{"analysis": map[string]any{"engine": "bayesian", "sequential": true}}, "analysis.engine"},
		"unknown flag":    {map[string]any{"flag": "ghost"}, "flag"},
	} {
		t.Run(name, func(t *testing.T) {
			body := map[string]any{"key": "bad", "environment": "production", "flag": "checkout", "control": "off",
				"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
				"metrics":    map[string]any{"primary": []string{"conversion"}}}
			for k, v := range tc.body {
				body[k] = v
			}
			r := s.req("POST", xp, s.owner, body)
			if r.Status != 422 || r.errorBody(t).Field != tc.field {
				t.Fatalf("%d %s (want field %s)", r.Status, r.Body, tc.field)
			}
		})
	}
	x := createExperiment(s, p, "checkout-q4", "checkout", nil)
	if x.Status != "draft" || !strings.HasPrefix(x.Salt, "checkout-q4-") || x.Analysis.Alpha != 0.05 || x.ContextKind != "user" {
		t.Fatalf("draft: %+v", x)
	}
	s.must(200, "POST", xp+"/checkout-q4/start", nil, &x)
	if x.Status != "running" || x.StartedAt == nil || x.MetricVersions["conversion"] != 1 || x.MetricVersions["errors"] != 1 {
		t.Fatalf("started: %+v", x)
	}
	// The flag now serves the experiment's split, with its salt and key, and is on.
	var cfg domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &cfg)
	ro := cfg.Fallthrough.Rollout
	if !cfg.On || ro == nil || ro.ExperimentKey != "checkout-q4" || ro.Salt != x.Salt || len(ro.Variations) != 2 {
		t.Fatalf("flag after start: %+v", cfg)
	}
	rs, _, err := compile(s, p, "production")
	if err != nil || rs.Flag("checkout").Fallthrough.Rollout.ExperimentKey != "checkout-q4" {
		t.Fatalf("ruleset: %v", err)
	}
	// Only one running experiment per flag and environment.
	createExperiment(s, p, "second", "checkout", nil)
	if r := s.req("POST", xp+"/second/start", s.owner, nil); r.Status != 409 || r.errorBody(t).Field != "flag" {
		t.Fatalf("second start: %d %s", r.Status, r.Body)
	}
	// Running experiments take only harmless edits.
	if r := s.req("PATCH", xp+"/checkout-q4", s.owner, map[string]any{"control": "on"}); r.Status != 412 {
		t.Fatalf("changing the control of a running experiment: %d", r.Status)
	}
	s.must(200, "PATCH", xp+"/checkout-q4", map[string]any{"hypothesis": "Sharper", "planned_duration": "480h"}, &x)
	var gs struct {
		Items []domain.Guardrail `json:"items"`
	}
	s.must(200, "GET", "/api/v1/guardrails?status=active", nil, &gs)
	if len(gs.Items) != 1 || gs.Items[0].Experiment != "checkout-q4" || gs.Items[0].Control != "off" || gs.Items[0].Treatments[0] != "on" {
		t.Fatalf("guardrails: %+v", gs.Items)
	}
	var running struct {
		Items []domain.Experiment `json:"items"`
	}
	s.must(200, "GET", "/api/v1/experiments?status=running", nil, &running)
	if len(running.Items) != 1 || running.Items[0].Key != "checkout-q4" {
		t.Fatalf("running experiments: %+v", running.Items)
	}
	// Conclude: ship "on" to everyone; guardrails end.
	if r := s.req("POST", xp+"/checkout-q4/conclude", s.owner, map[string]any{"outcome": "ship", "variation": "maybe"}); r.Status != 422 {
		t.Fatalf("shipping an unknown variation: %d", r.Status)
	}
	s.must(200, "POST", xp+"/checkout-q4/conclude", map[string]any{"outcome": "ship", "variation": "on", "rationale": "+4% conversion"}, &x)
	if x.Status != "concluded" || x.Decision == nil || x.Decision.Variation != "on" || x.Decision.DecidedBy != "owner@acme.test" {
		t.Fatalf("concluded: %+v", x)
	}
	cfg = domain.FlagEnvironment{}
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &cfg)
	if cfg.Fallthrough.Variation != "on" || cfg.Fallthrough.Rollout != nil {
		t.Fatalf("shipped flag: %+v", cfg.Fallthrough)
	}
	s.must(200, "GET", "/api/v1/guardrails?status=active", nil, &gs)
	if len(gs.Items) != 0 {
		t.Fatal("guardrails still active after the conclusion")
	}
	var hist struct {
		Items []domain.ConfigVersion `json:"items"`
	}
	s.must(200, "GET", configPath(p, "checkout", "production")+"/history", nil, &hist)
	if hist.Items[0].Change != "experiment" || hist.Items[1].Change != "experiment" {
		t.Fatalf("experiment changes are versioned flag changes: %q %q", hist.Items[0].Change, hist.Items[1].Change)
	}
	if r := s.req("DELETE", xp+"/checkout-q4", s.owner, nil); r.Status != 412 {
		t.Fatalf("deleting a concluded experiment: %d", r.Status)
	}
	s.must(204, "DELETE", xp+"/second", nil, nil)
}

func TestGuardrailBreachRollsBackOnce(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	s.boolFlag(p, "banner")
	for _, m := range []map[string]any{
		{"key": "conversion", "kind": "proportion", "event_key": "purchase"},
		{"key": "revenue", "kind": "sum", "event_key": "purchase"},
		{"key": "errors", "kind": "count", "event_key": "error", "direction": "decrease"},
	} {
		s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", m, nil)
	}
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	s.must(200, "POST", "/api/v1/projects/"+p+"/experiments/checkout-q4/start", nil, nil)
	var gs struct {
		Items []domain.Guardrail `json:"items"`
	}
	s.must(200, "GET", "/api/v1/guardrails?status=active", nil, &gs)
	g := gs.Items[0]
	jobs := s.serviceToken(domain.RoleAdmin, "", "")
	path := "/api/v1/projects/" + p + "/environments/production/guardrails/" + g.ID + "/breach"
	body := map[string]any{"effect": 0.051, "interval": []float64{0.031, 0.071}, "p_value": 0.0004}
	var out domain.Guardrail
	if r := s.req("POST", path, jobs, body); r.Status != 200 {
		t.Fatalf("breach: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &out)
	}
	if out.Status != "breached" || out.Breach == nil || out.Breach.ActionTaken != "serve_control" || out.Breach.PValue != 0.0004 {
		t.Fatalf("breach: %+v", out)
	}
	if r := s.req("POST", path, jobs, body); r.Status != 409 {
		t.Fatalf("a second breach report must be refused: %d", r.Status)
	}
	var cfg domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &cfg)
	if !cfg.On || cfg.Fallthrough.Variation != "off" || cfg.Fallthrough.Rollout != nil {
		t.Fatalf("rolled back flag should serve the control: %+v", cfg.Fallthrough)
	}
	var page struct {
		Items []domain.AuditEntry `json:"items"`
	}
	s.must(200, "GET", "/api/v1/audit?action=flag_config.auto_rollback", nil, &page)
	if len(page.Items) != 1 {
		t.Fatalf("auto rollback audit entries: %d", len(page.Items))
	}
	c := page.Items[0].Comment
	for _, want := range []string{"automatic rollback", g.ID, "errors", "+5.10%", "+3.10%", "+7.10%", "p=0.0004"} {
		if !strings.Contains(c, want) {
			t.Fatalf("audit comment %q lacks %q", c, want)
		}
	}
	// A plain rollout's guardrail turns the flag off.
	s.must(200, "PUT", configPath(p, "banner", "staging"), map[string]any{"on": true, "off_variation": "off", "fallthrough": rollout(10000, 90000)}, nil)
	var pg domain.Guardrail
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/staging/guardrails", map[string]any{"flag": "banner", "metric": "errors",
		"tolerance": 0.01, "action": "rollback", "control": "off", "treatments": []string{"on"}}, &pg)
	// (Its breach is a difference of means: the control had no errors at all.)
	absolute := map[string]any{"effect": 0.0204, "interval": []float64{0.0113, 0.0295}, "p_value": 0.0004, "absolute": true}
	if r := s.req("POST", "/api/v1/projects/"+p+"/environments/staging/guardrails/"+pg.ID+"/breach", jobs, absolute); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	} else if r.decode(t, &out); out.Breach == nil || !out.Breach.Absolute || out.Breach.Effect != 0.0204 {
		t.Fatalf("an absolute breach is recorded as such: %+v", out.Breach)
	}
	s.must(200, "GET", configPath(p, "banner", "staging"), nil, &cfg)
	if cfg.On {
		t.Fatal("a plain rollout's rollback guardrail turns the flag off")
	}
	s.must(200, "GET", "/api/v1/audit?action=flag_config.auto_rollback", nil, &page)
	if len(page.Items) != 2 || !strings.Contains(page.Items[0].Comment, "+0.0204 per unit from a control mean of 0") {
		t.Fatalf("the absolute breach's rollback comment: %+v", page.Items)
	}
	// An alert guardrail records the breach and changes nothing.
	s.rollout(p, "banner", "development")
	var ag domain.Guardrail
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/development/guardrails", map[string]any{"flag": "banner", "metric": "errors",
		"tolerance": 0.01, "action": "alert", "control": "off", "treatments": []string{"on"}}, &ag)
	s.must(200, "POST", configPath(p, "banner", "development")+"/toggle", map[string]any{"on": true}, nil)
	s.must(200, "POST", "/api/v1/projects/"+p+"/environments/development/guardrails/"+ag.ID+"/breach", body, &out)
	s.must(200, "GET", configPath(p, "banner", "development"), nil, &cfg)
	if out.Breach.ActionTaken != "alert_only" || !cfg.On {
		t.Fatalf("alert guardrail: %+v on=%v", out.Breach, cfg.On)
	}
	if r := s.req("POST", "/api/v1/projects/"+p+"/environments/staging/guardrails/"+pg.ID+"/breach", jobs,
		map[string]any{"effect": 0.1, "interval": []float64{0, 1}, "p_value": 3}); r.Status != 422 {
		t.Fatalf("bad p-value: %d", r.Status)
	}
}

// TestOrgExperimentsStoppedAfter: GET /api/v1/experiments?stopped_after= lists only the
// experiments stopped at or after the time (the stats results workers read the recently stopped
// ones, not every experiment ever concluded); a malformed time is 400 naming the parameter.
func TestOrgExperimentsStoppedAfter(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	experimentMetrics(s, p)
	xp := "/api/v1/projects/" + p + "/experiments"
	for _, key := range []string{"old", "recent", "running"} {
		s.boolFlag(p, key)
		createExperiment(s, p, key, key, nil)
		s.must(200, "POST", xp+"/"+key+"/start", nil, nil)
	}
	s.must(200, "POST", xp+"/old/stop", nil, nil)
	s.must(200, "POST", xp+"/recent/stop", nil, nil)
	// Stopped 30 days ago: older than any window a caller asks for below.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE experiments SET stopped_at = now() - interval '30 days' WHERE key = 'old'`); err != nil {
		t.Fatal(err)
	}
	keys := func(query string) []string {
		var out struct {
			Items []domain.Experiment `json:"items"`
		}
		s.must(200, "GET", "/api/v1/experiments?"+query, nil, &out)
		var ks []string
		for _, x := range out.Items {
			ks = append(ks, x.Key)
		}
		slices.Sort(ks)
		return ks
	}
	week := time.Now().Add(-7 * 24 * time.Hour).UTC()
	for query, want := range map[string][]string{
		"status=stopped": {"old", "recent"},
		"status=stopped&stopped_after=" + week.Format(time.RFC3339):                                              {"recent"},
		"stopped_after=" + url.QueryEscape(week.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)):         {"recent"},
		"status=stopped&stopped_after=" + url.QueryEscape(time.Now().Add(-40*24*time.Hour).Format(time.RFC3339)): {"old", "recent"},
		"status=stopped&stopped_after=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339):                   nil,
		"status=running&stopped_after=" + week.Format(time.RFC3339):                                              nil,
	} {
		if got := keys(query); !slices.Equal(got, want) {
			t.Errorf("GET /api/v1/experiments?%s: %v, want %v", query, got, want)
		}
	}
	for _, bad := range []string{"yesterday", "2026-01-02", "1700000000"} {
		if e := s.refused(400, "stopped_after", "GET", "/api/v1/experiments?status=stopped&stopped_after="+bad, nil); !strings.Contains(e.Message, "RFC 3339") {
			t.Errorf("stopped_after=%s: %q", bad, e.Message)
		}
	}
}
