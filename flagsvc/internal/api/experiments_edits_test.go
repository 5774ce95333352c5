package api_test

import (
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

// shopExperiments makes project "shop" with the boolean flag "checkout" and the metrics of
// experimentMetrics; it returns the project's experiments path.
func shopExperiments(s *stack) (string, string) {
	p := s.project("shop")
	s.boolFlag(p, "checkout")
	experimentMetrics(s, p)
	return p, "/api/v1/projects/" + p + "/experiments"
}

func TestUpdateRefusesAnOwnerWhoIsNotAMember(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	xp := base + "/checkout-q4"
	for _, owner := range []string{"00000000-0000-0000-0000-000000000000", "nobody"} {
		s.refused(422, "owner_id", "PATCH", xp, map[string]any{"owner_id": owner})
	}
	var m domain.Member
	s.must(201, "POST", "/api/v1/members", map[string]any{"email": "ana@acme.test", "role": "viewer"}, &m)
	var x domain.Experiment
	s.must(200, "PATCH", xp, map[string]any{"owner_id": m.ID}, &x)
	if x.OwnerID != m.ID {
		t.Fatalf("owner: %q, want %q", x.OwnerID, m.ID)
	}
	var cleared domain.Experiment
	s.must(200, "PATCH", xp, map[string]any{"owner_id": ""}, &cleared)
	if cleared.OwnerID != "" {
		t.Fatalf("owner cleared: %q", cleared.OwnerID)
	}
}

func TestAMetricHasOneGuardrailPerExperiment(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	twice := map[string]any{"primary": []string{"conversion"}, "guardrails": []any{
		map[string]any{"metric": "errors", "tolerance": 0.02}, map[string]any{"metric": "errors", "tolerance": 0.5, "action": "rollback"}}}
	body := map[string]any{"key": "checkout-q4", "environment": "production", "flag": "checkout", "control": "off",
		"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
		"metrics":    twice}
	s.refused(422, "metrics.guardrails[1].metric", "POST", base, body)
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	s.refused(422, "metrics.guardrails[1].metric", "PATCH", base+"/checkout-q4", map[string]any{"metrics": twice})
}

func TestStartedExperimentStaysEditableWhenItsMetricIsArchived(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	xp := base + "/checkout-q4"
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	s.must(200, "POST", xp+"/start", nil, nil)
	s.must(204, "DELETE", "/api/v1/projects/"+p+"/metrics/conversion", nil, nil)
	s.must(204, "DELETE", "/api/v1/projects/"+p+"/metrics/revenue", nil, nil)
	var x domain.Experiment
	s.must(200, "PATCH", xp, map[string]any{"hypothesis": "Sharper"}, &x)
	if x.Hypothesis != "Sharper" || x.MetricVersions["conversion"] != 1 {
		t.Fatalf("edited: %+v %v", x.Hypothesis, x.MetricVersions)
	}
	s.must(200, "POST", xp+"/stop", nil, nil)
	s.must(200, "PATCH", xp, map[string]any{"name": "Checkout Q4"}, nil)
}

func TestStoppedExperimentRecordsTheVersionOfAnAddedMetric(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	xp := base + "/checkout-q4"
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	s.must(200, "POST", xp+"/start", nil, nil)
	s.must(200, "POST", xp+"/stop", nil, nil)
	metricsPath := "/api/v1/projects/" + p + "/metrics"
	s.must(201, "POST", metricsPath, map[string]any{"key": "load-time", "kind": "mean", "event_key": "load"}, nil)
	s.must(201, "POST", metricsPath, map[string]any{"key": "old", "kind": "count", "event_key": "legacy"}, nil)
	s.must(200, "PUT", metricsPath+"/load-time", map[string]any{"kind": "mean", "event_key": "page-load"}, nil)
	s.must(204, "DELETE", metricsPath+"/old", nil, nil)
	metrics := func(secondary ...string) map[string]any {
		return map[string]any{"metrics": map[string]any{"primary": []string{"conversion"}, "secondary": secondary,
			"guardrails": []any{map[string]any{"metric": "errors", "tolerance": 0.02, "action": "rollback"}}}}
	}
	s.refused(422, "metrics.secondary[1]", "PATCH", xp, metrics("revenue", "old"))
	var x domain.Experiment
	s.must(200, "PATCH", xp, metrics("revenue", "load-time"), &x)
	if x.MetricVersions["load-time"] != 2 || x.MetricVersions["conversion"] != 1 {
		t.Fatalf("metric versions: %v, want load-time 2 (its version when added) and conversion 1", x.MetricVersions)
	}
}

func TestStartedExperimentTakesItsDesignSentBackUnchanged(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	xp := base + "/checkout-q4"
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	var x domain.Experiment
	s.must(200, "POST", xp+"/start", nil, &x)
	// What GET returns, with the hypothesis edited: only the hypothesis changes.
	body := map[string]any{"hypothesis": "Sharper", "control": x.Control, "variations": x.Variations, "context_kind": x.ContextKind,
		"metrics": x.Metrics, "analysis": x.Analysis, "planned_duration": x.PlannedDuration, "version": x.Version}
	s.must(200, "PATCH", xp, body, &x)
	if x.Hypothesis != "Sharper" {
		t.Fatalf("hypothesis: %q", x.Hypothesis)
	}
	// Real changes are still refused, whatever else comes with them.
	a := x.Analysis
	a.Alpha = 0.1
	body["analysis"], body["version"] = a, x.Version
	s.refused(412, "analysis", "PATCH", xp, body)
	body["analysis"] = x.Analysis
	body["variations"] = []any{map[string]any{"variation": "off", "weight": 10000}, map[string]any{"variation": "on", "weight": 90000}}
	s.refused(412, "variations", "PATCH", xp, body)
}

func TestStartEndsTheGuardrailsOfAStoppedExperimentItReplaces(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	createExperiment(s, p, "first", "checkout", nil)
	s.must(200, "POST", base+"/first/start", nil, nil)
	s.must(200, "POST", base+"/first/stop", nil, nil)
	createExperiment(s, p, "second", "checkout", map[string]any{"salt": "second-salt"})
	s.must(200, "POST", base+"/second/start", nil, nil)
	guardrails := "/api/v1/projects/" + p + "/environments/production/guardrails"
	var gs struct {
		Items []domain.Guardrail `json:"items"`
	}
	s.must(200, "GET", guardrails, nil, &gs)
	var active []string
	firstID := ""
	for _, g := range gs.Items {
		if g.Status == "active" {
			active = append(active, g.Experiment)
		}
		if g.Experiment == "first" {
			firstID = g.ID
		}
	}
	if len(active) != 1 || active[0] != "second" {
		t.Fatalf("active guardrails belong to experiments %v, want only second's", active)
	}
	// The monitor reporting a breach of the first experiment's guardrail changes nothing.
	r := s.req("POST", guardrails+"/"+firstID+"/breach", s.owner, map[string]any{"effect": 0.05, "interval": []float64{0.03, 0.07}, "p_value": 0.001})
	if r.Status != 409 {
		t.Fatalf("breach of a replaced experiment's guardrail: %d %s", r.Status, r.Body)
	}
	var cfg domain.FlagEnvironment
	s.must(200, "GET", "/api/v1/projects/"+p+"/flags/checkout/environments/production", nil, &cfg)
	if ro := cfg.Fallthrough.Rollout; ro == nil || ro.ExperimentKey != "second" {
		t.Fatalf("the second experiment's rollout: %+v", cfg.Fallthrough)
	}
}

func TestARatioWithAnArchivedPartIsRefused(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	metricsPath := "/api/v1/projects/" + p + "/metrics"
	s.must(201, "POST", metricsPath, map[string]any{"key": "orders", "kind": "count", "event_key": "purchase"}, nil)
	s.must(201, "POST", metricsPath, map[string]any{"key": "aov", "kind": "ratio", "numerator": "revenue", "denominator": "orders"}, nil)
	aov := map[string]any{"metrics": map[string]any{"primary": []string{"aov"}}}
	createExperiment(s, p, "drafted", "checkout", aov)
	s.must(204, "DELETE", metricsPath+"/orders", nil, nil)
	body := map[string]any{"key": "checkout-q4", "environment": "production", "flag": "checkout", "control": "off",
		"variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
		"metrics":    aov["metrics"]}
	e := s.refused(422, "metrics.primary[0]", "POST", base, body)
	if !strings.Contains(e.Message, `"orders"`) {
		t.Fatalf("the error names the archived part: %q", e.Message)
	}
	s.refused(422, "metrics.primary[0]", "POST", base+"/drafted/start", nil)
}

func TestRatioOfAMetricOverItselfIsRefused(t *testing.T) {
	s := newStack(t)
	p, _ := shopExperiments(s)
	metricsPath := "/api/v1/projects/" + p + "/metrics"
	s.refused(422, "denominator", "POST", metricsPath, map[string]any{"key": "one", "kind": "ratio", "numerator": "revenue", "denominator": "revenue"})
	s.must(201, "POST", metricsPath, map[string]any{"key": "aov", "kind": "ratio", "numerator": "revenue", "denominator": "conversion"}, nil)
	s.refused(422, "denominator", "PUT", metricsPath+"/aov", map[string]any{"kind": "ratio", "numerator": "revenue", "denominator": "revenue"})
}

// TestAFlagServingAnExperimentIsNeitherArchivedNorDeleted: archiving a flag would leave a
// running experiment's split unconcludable (shipping or rolling back goes through the flag),
// and deleting it deleted the experiment and its guardrails, without an audit entry of theirs.
func TestAFlagServingAnExperimentIsNeitherArchivedNorDeleted(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	flags := "/api/v1/projects/" + p + "/flags"
	archive := map[string]any{"lifecycle": "archived"}
	refusedEverywhere := func(state string) {
		t.Helper()
		for _, e := range []httpapi.ErrorDetail{
			s.refused(409, "lifecycle", "PATCH", flags+"/checkout", archive),
			s.refused(409, "lifecycle", "DELETE", flags+"/checkout", nil),
		} {
			if !strings.Contains(e.Message, `"checkout-q4"`) || !strings.Contains(e.Message, state) {
				t.Fatalf("the error names the %s experiment: %q", state, e.Message)
			}
		}
		if r := s.req("POST", flags+"/bulk", s.owner, map[string]any{"action": "archive", "keys": []string{"checkout"}}); r.Status != 409 {
			t.Fatalf("bulk archive of a flag with a %s experiment: %d %s", state, r.Status, r.Body)
		}
	}
	s.must(200, "POST", base+"/checkout-q4/start", nil, nil)
	refusedEverywhere("running")
	s.must(200, "POST", base+"/checkout-q4/stop", nil, nil)
	refusedEverywhere("stopped")
	// A decision says why (the dashboards' dialog asks for it too).
	for _, rationale := range []any{nil, "", "  \n"} {
		body := map[string]any{"outcome": "ship", "variation": "on"}
		if rationale != nil {
			body["rationale"] = rationale
		}
		s.refused(422, "rationale", "POST", base+"/checkout-q4/conclude", body)
	}
	s.must(200, "POST", base+"/checkout-q4/conclude", map[string]any{"outcome": "ship", "variation": "on", "rationale": "+4% conversion"}, nil)
	var f domain.Flag
	s.must(200, "PATCH", flags+"/checkout", archive, &f)
	if f.Lifecycle != domain.LifecycleArchived {
		t.Fatalf("archived once concluded: %+v", f.Lifecycle)
	}
}
