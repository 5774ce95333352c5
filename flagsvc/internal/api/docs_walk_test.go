package api_test

import (
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// Defects found by a new user walking the docs against the running service.

// TestMetricServerFieldsAreRefusedByName: a metric's server-set fields are refused whenever
// they are sent — false as much as true — and the error names the field actually sent.
func TestMetricServerFieldsAreRefusedByName(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	metrics := "/api/v1/projects/" + p + "/metrics"
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"key": "conversion", "kind": "proportion", "event_key": "purchase"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	cases := map[string]struct {
		extra map[string]any
		field string
	}{
		"created_at":                 {map[string]any{"created_at": "2026-01-01T00:00:00Z"}, "created_at"},
		"zero created_at":            {map[string]any{"created_at": "0001-01-01T00:00:00Z"}, "created_at"},
		"updated_at":                 {map[string]any{"updated_at": "2026-01-01T00:00:00Z"}, "updated_at"},
		"archived true":              {map[string]any{"archived": true}, "archived"},
		"archived false":             {map[string]any{"archived": false}, "archived"},
		"archived null":              {map[string]any{"archived": nil}, "archived"},
		"archived and a timestamp":   {map[string]any{"archived": false, "updated_at": "2026-01-01T00:00:00Z"}, "archived"},
		"created_at in another case": {map[string]any{"Created_At": "2026-01-01T00:00:00Z"}, "created_at"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := s.req("POST", metrics, s.owner, body(c.extra))
			if r.Status != 422 {
				t.Fatalf("status %d, want 422 naming %s: %s", r.Status, c.field, r.Body)
			}
			if e := r.errorBody(t); e.Field != c.field || !strings.Contains(e.Message, c.field) {
				t.Fatalf("error %+v, want one naming %s", e, c.field)
			}
		})
	}
	// Nothing was created; the same metric without those fields is.
	s.refused(404, "", "GET", metrics+"/conversion", nil)
	var m domain.Metric
	s.must(201, "POST", metrics, body(nil), &m)
	// A PUT follows the same rule.
	s.refused(422, "archived", "PUT", metrics+"/conversion", body(map[string]any{"archived": false}))
	s.refused(422, "created_at", "PUT", metrics+"/conversion", body(map[string]any{"created_at": m.CreatedAt}))
}

// TestRefusalsNameWhatWasRefused: a developer's DELETE of a metric is refused as the deletion
// of a metric (not of a flag), saying which role may; a viewer's edits likewise.
func TestRefusalsNameWhatWasRefused(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", map[string]any{"key": "conversion", "kind": "proportion", "event_key": "purchase"}, nil)
	dev, viewer := s.serviceToken(domain.RoleDeveloper, "", ""), s.serviceToken(domain.RoleViewer, "", "")
	cases := []struct {
		name, token, method, path string
		body                      any
		want                      string
	}{
		{"developer deletes a metric", dev, "DELETE", "/api/v1/projects/" + p + "/metrics/conversion", nil,
			"role developer may not delete metrics (needs project_admin)"},
		{"viewer edits a metric", viewer, "PUT", "/api/v1/projects/" + p + "/metrics/conversion",
			map[string]any{"kind": "proportion", "event_key": "purchase"}, "role viewer may not edit metrics (needs developer)"},
		{"viewer creates a segment", viewer, "POST", "/api/v1/projects/" + p + "/environments/development/segments",
			map[string]any{"key": "beta"}, "role viewer may not change segments in this environment (needs developer)"},
		{"developer creates an SDK key", dev, "POST", "/api/v1/projects/" + p + "/environments/development/sdk-keys",
			map[string]any{"kind": "server"}, "role developer may not manage this project's SDK keys (needs project_admin)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.req(c.method, c.path, c.token, c.body)
			if r.Status != 403 {
				t.Fatalf("status %d, want 403: %s", r.Status, r.Body)
			}
			if got := r.errorBody(t).Message; got != c.want {
				t.Fatalf("message %q, want %q", got, c.want)
			}
		})
	}
	var m domain.Metric
	s.must(200, "GET", "/api/v1/projects/"+p+"/metrics/conversion", nil, &m)
	if m.Archived || m.Version != 1 {
		t.Fatalf("refused calls changed the metric: %+v", m)
	}
}

// TestGuardrailNeedsARolloutAndIsNotDuplicated: a guardrail watches what a plain percentage
// rollout splits between its control and treatments, so a flag serving one variation (or a
// rollout without the control or a treatment) is refused naming the field; a second active
// guardrail on the same flag, environment and metric is 409 naming the metric, and a disabled
// one does not count.
func TestGuardrailNeedsARolloutAndIsNotDuplicated(t *testing.T) {
	s := newStack(t)
	p := s.project("shop")
	s.boolFlag(p, "promo")
	s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", map[string]any{"key": "errors", "kind": "count", "event_key": "error", "direction": "decrease"}, nil)
	s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", map[string]any{"key": "latency", "kind": "mean", "event_key": "page"}, nil)
	guardrails := "/api/v1/projects/" + p + "/environments/production/guardrails"
	guardrail := func(metric string) map[string]any {
		return map[string]any{"flag": "promo", "metric": metric, "tolerance": 0.02, "action": "rollback", "control": "off", "treatments": []string{"on"}}
	}
	list := func() []domain.Guardrail {
		var gs struct {
			Items []domain.Guardrail `json:"items"`
		}
		s.must(200, "GET", guardrails, nil, &gs)
		return gs.Items
	}

	// No rollout: the default configuration serves one variation.
	e := s.refused(422, "flag", "POST", guardrails, guardrail("errors"))
	if !strings.Contains(e.Message, "no percentage rollout") || !strings.Contains(e.Message, "production") {
		t.Fatalf("message %q does not say the flag has no rollout in production", e.Message)
	}
	// A rollout in another environment does not count.
	s.rollout(p, "promo", "staging")
	s.refused(422, "flag", "POST", guardrails, guardrail("errors"))
	// An experiment's rollout is watched by the experiment's own guardrails.
	s.boolFlag(p, "checkout")
	s.must(201, "POST", "/api/v1/projects/"+p+"/experiments", map[string]any{"key": "checkout-test", "environment": "production",
		"flag": "checkout", "control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000},
			map[string]any{"variation": "on", "weight": 50000}}, "metrics": map[string]any{"primary": []string{"latency"}}}, nil)
	s.must(200, "POST", "/api/v1/projects/"+p+"/experiments/checkout-test/start", nil, nil)
	onCheckout := guardrail("errors")
	onCheckout["flag"] = "checkout"
	s.refused(422, "flag", "POST", guardrails, onCheckout)
	// A rollout of "on" alone has no control to compare with.
	s.must(200, "PATCH", configPath(p, "promo", "production"), map[string]any{"fallthrough": map[string]any{"variation": nil,
		"rollout": map[string]any{"variations": []any{map[string]any{"variation": "on", "weight": 100000}}}}}, nil)
	s.refused(422, "control", "POST", guardrails, guardrail("errors"))
	// A rule's rollout over the control alone: the treatment is not split with it.
	s.must(200, "PATCH", configPath(p, "promo", "production"), map[string]any{"fallthrough": map[string]any{"variation": "off", "rollout": nil},
		"rules": []any{map[string]any{"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []string{"NL"}}},
			"serve": map[string]any{"rollout": map[string]any{"variations": []any{map[string]any{"variation": "off", "weight": 100000}}}}}}}, nil)
	s.refused(422, "treatments[0]", "POST", guardrails, guardrail("errors"))
	if gs := list(); len(gs) != 0 {
		t.Fatalf("refused guardrails were created: %+v", gs)
	}

	// With a rollout over both (on the fallthrough), it is created; a second one is a conflict.
	s.rollout(p, "promo", "production")
	var g domain.Guardrail
	s.must(201, "POST", guardrails, guardrail("errors"), &g)
	e = s.refused(409, "metric", "POST", guardrails, guardrail("errors"))
	if !strings.Contains(e.Message, `"errors"`) || !strings.Contains(e.Message, g.ID) {
		t.Fatalf("message %q does not name the metric and the guardrail watching it", e.Message)
	}
	other := guardrail("errors")
	other["action"], other["tolerance"] = "alert", 0.01
	s.refused(409, "metric", "POST", guardrails, other)
	// Another metric on the same rollout is fine.
	s.must(201, "POST", guardrails, guardrail("latency"), nil)

	// Disabled (DELETE), it stays listed as disabled and a new one may replace it.
	s.must(204, "DELETE", guardrails+"/"+g.ID, nil, nil)
	var again domain.Guardrail
	s.must(201, "POST", guardrails, guardrail("errors"), &again)
	status := map[string]string{}
	for _, x := range list() {
		if x.Metric == "errors" {
			status[x.ID] = x.Status
		}
	}
	if len(status) != 2 || status[g.ID] != "disabled" || status[again.ID] != "active" {
		t.Fatalf("errors guardrails: %v, want %s disabled and %s active", status, g.ID, again.ID)
	}
}
