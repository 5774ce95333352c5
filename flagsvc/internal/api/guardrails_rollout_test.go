package api_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// plainGuardrail declares an alert guardrail on the errors metric over flag's off/on rollout.
func (s *stack) plainGuardrail(project, env, flag string) domain.Guardrail {
	s.t.Helper()
	var g domain.Guardrail
	s.must(201, "POST", "/api/v1/projects/"+project+"/environments/"+env+"/guardrails", map[string]any{"flag": flag,
		"metric": "errors", "tolerance": 0.02, "action": "alert", "control": "off", "treatments": []string{"on"}}, &g)
	return g
}

// guardrailStatus reads a guardrail's status from its environment's list.
func (s *stack) guardrailStatus(project, env, id string) string {
	s.t.Helper()
	var gs struct {
		Items []domain.Guardrail `json:"items"`
	}
	s.must(200, "GET", "/api/v1/projects/"+project+"/environments/"+env+"/guardrails", nil, &gs)
	for _, g := range gs.Items {
		if g.ID == id {
			return g.Status
		}
	}
	s.t.Fatalf("guardrail %s not listed in %s", id, env)
	return ""
}

// disableEntries returns the guardrail.disable audit entries of a guardrail.
func (s *stack) disableEntries(id string) []domain.AuditEntry {
	s.t.Helper()
	var page struct {
		Items []domain.AuditEntry `json:"items"`
	}
	s.must(200, "GET", "/api/v1/audit?action=guardrail.disable&resource="+id, nil, &page)
	return page.Items
}

func guardrailSetup(t *testing.T) (*stack, string) {
	s := newStack(t)
	p := s.project("shop")
	s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", map[string]any{"key": "errors", "kind": "count", "event_key": "error",
		"direction": "decrease"}, nil)
	for _, f := range []string{"checkout", "banner"} {
		s.boolFlag(p, f)
	}
	return s, p
}

// TestGuardrailEndsWithItsRollout: a plain guardrail stays active through ramps (weights up to
// 100/0), the kill switch, its rollout moving to a rule and other flags' or environments'
// changes; a PUT that removes the rollout disables it in the same change — audited by the
// change's caller, naming the change and its version — and answers as any PUT does.
func TestGuardrailEndsWithItsRollout(t *testing.T) {
	s, p := guardrailSetup(t)
	for _, env := range []string{"production", "staging"} {
		s.rollout(p, "checkout", env)
	}
	s.rollout(p, "banner", "production")
	g := s.plainGuardrail(p, "production", "checkout")
	other := s.plainGuardrail(p, "staging", "checkout")
	banner := s.plainGuardrail(p, "production", "banner")
	cfg := configPath(p, "checkout", "production")

	// A ramp, to everyone and back to no one, the kill switch and a move to a rule keep it.
	s.must(200, "PATCH", cfg, map[string]any{"on": true, "fallthrough": rollout(50000, 50000)}, nil)
	s.must(200, "PATCH", cfg, map[string]any{"fallthrough": rollout(100000, 0)}, nil)
	s.must(200, "PATCH", cfg, map[string]any{"fallthrough": rollout(0, 100000)}, nil)
	s.must(200, "POST", cfg+"/kill", map[string]any{"reason": "incident"}, nil)
	s.must(200, "PUT", cfg, map[string]any{"on": true, "off_variation": "off", "fallthrough": map[string]any{"variation": "off"},
		"rules": []any{map[string]any{"clauses": []any{map[string]any{"attribute": "country", "op": "in", "values": []string{"fr"}}},
			"serve": rollout(10000, 90000)}}}, nil)
	if st := s.guardrailStatus(p, "production", g.ID); st != "active" {
		t.Fatalf("after ramps, a kill and a move to a rule the guardrail is %s, want active", st)
	}
	// Another flag's rollout and the same flag's in another environment end their own guardrails only.
	s.must(200, "PUT", configPath(p, "banner", "production"), map[string]any{"on": true, "fallthrough": map[string]any{"variation": "on"}}, nil)
	s.must(200, "PUT", configPath(p, "checkout", "staging"), map[string]any{"on": true, "fallthrough": map[string]any{"variation": "on"}}, nil)
	if st := s.guardrailStatus(p, "production", g.ID); st != "active" {
		t.Fatalf("after other flags' and environments' changes the guardrail is %s, want active", st)
	}
	if a, b := s.guardrailStatus(p, "production", banner.ID), s.guardrailStatus(p, "staging", other.ID); a != "disabled" || b != "disabled" {
		t.Fatalf("guardrails whose rollout was removed: banner %s, checkout in staging %s; want disabled", a, b)
	}
	if n := len(s.disableEntries(g.ID)); n != 0 {
		t.Fatalf("%d guardrail.disable entries for the guardrail still active", n)
	}

	// The PUT that removes the rollout ends it.
	var before, fe domain.FlagEnvironment
	s.must(200, "GET", cfg, nil, &before)
	s.must(200, "PUT", cfg, map[string]any{"on": true, "off_variation": "off", "fallthrough": map[string]any{"variation": "on"},
		"comment": "ship it"}, &fe)
	if fe.Version != before.Version+1 || fe.Fallthrough.Variation != "on" || len(fe.Rules) != 0 {
		t.Fatalf("the PUT's answer: version %d (was %d), %+v", fe.Version, before.Version, fe.FlagConfig)
	}
	if st := s.guardrailStatus(p, "production", g.ID); st != "disabled" {
		t.Fatalf("after its rollout was removed the guardrail is %s, want disabled", st)
	}
	var active struct {
		Items []domain.Guardrail `json:"items"`
	}
	s.must(200, "GET", "/api/v1/guardrails?status=active", nil, &active)
	if len(active.Items) != 0 {
		t.Fatalf("the monitor still sweeps %+v", active.Items)
	}
	entries := s.disableEntries(g.ID)
	if len(entries) != 1 {
		t.Fatalf("guardrail.disable entries: %+v", entries)
	}
	e := entries[0]
	for _, want := range []string{"flag_config.update", "version " + strconv.FormatInt(fe.Version, 10), `"checkout"`, "production", "no percentage rollout"} {
		if !strings.Contains(e.Comment, want) {
			t.Fatalf("audit comment %q lacks %q", e.Comment, want)
		}
	}
	if e.Actor.Name != "owner@acme.test" || !strings.Contains(string(e.Before), `"active"`) || !strings.Contains(string(e.After), `"disabled"`) {
		t.Fatalf("audit entry: actor %+v before %s after %s", e.Actor, e.Before, e.After)
	}
	// Declaring it again needs a rollout again.
	s.refused(422, "flag", "POST", "/api/v1/projects/"+p+"/environments/production/guardrails", map[string]any{"flag": "checkout",
		"metric": "errors", "tolerance": 0.02, "control": "off", "treatments": []string{"on"}})
}

// TestGuardrailEndsWithRollbackAndScheduledChange: a rollback to a version without the rollout
// and a scheduled change (the jobs service's) that removes it disable the guardrail, naming
// the change; a rollback to a version with the rollout afterwards does not bring it back.
func TestGuardrailEndsWithRollbackAndScheduledChange(t *testing.T) {
	s, p := guardrailSetup(t)
	cfg := configPath(p, "checkout", "development")
	var v1 domain.FlagEnvironment
	s.must(200, "GET", cfg, nil, &v1)
	s.rollout(p, "checkout", "development")
	g := s.plainGuardrail(p, "development", "checkout")
	var fe domain.FlagEnvironment
	s.must(200, "POST", cfg+"/rollback", map[string]any{"to_version": v1.Version}, &fe)
	if fe.Fallthrough.Rollout != nil {
		t.Fatalf("rolled back to %+v", fe.Fallthrough)
	}
	if st := s.guardrailStatus(p, "development", g.ID); st != "disabled" {
		t.Fatalf("after a rollback to a version without its rollout the guardrail is %s, want disabled", st)
	}
	entries := s.disableEntries(g.ID)
	if len(entries) != 1 || !strings.Contains(entries[0].Comment, "flag_config.rollback (version "+strconv.FormatInt(fe.Version, 10)+" ") {
		t.Fatalf("guardrail.disable entries: %+v", entries)
	}
	s.must(200, "POST", cfg+"/rollback", map[string]any{"to_version": fe.Version - 1}, nil)
	if st := s.guardrailStatus(p, "development", g.ID); st != "disabled" {
		t.Fatalf("a rollback to the rollout's version made the guardrail %s; it stays disabled", st)
	}

	// A scheduled change, made by the jobs service's token.
	s.rollout(p, "banner", "staging")
	sg := s.plainGuardrail(p, "staging", "banner")
	jobs := s.serviceToken(domain.RoleAdmin, "", "")
	if r := s.req("PATCH", configPath(p, "banner", "staging"), jobs, map[string]any{"fallthrough": map[string]any{"variation": "on", "rollout": nil}},
		"X-Switchyard-Origin", "scheduled"); r.Status != 200 {
		t.Fatalf("scheduled change: %d %s", r.Status, r.Body)
	}
	if st := s.guardrailStatus(p, "staging", sg.ID); st != "disabled" {
		t.Fatalf("after a scheduled change removed its rollout the guardrail is %s, want disabled", st)
	}
	if entries := s.disableEntries(sg.ID); len(entries) != 1 || !strings.Contains(entries[0].Comment, "flag_config.scheduled") {
		t.Fatalf("guardrail.disable entries: %+v", entries)
	}
}

// TestGuardrailRollbackBreachUnaffected: a rollback guardrail's breach turns the flag off as
// before and records the breach; the automatic rollback (which keeps the rollout) disables
// neither it nor another guardrail on the same rollout.
func TestGuardrailRollbackBreachUnaffected(t *testing.T) {
	s, p := guardrailSetup(t)
	s.must(201, "POST", "/api/v1/projects/"+p+"/metrics", map[string]any{"key": "crashes", "kind": "count", "event_key": "crash",
		"direction": "decrease"}, nil)
	s.must(200, "PUT", configPath(p, "checkout", "production"), map[string]any{"on": true, "off_variation": "off",
		"fallthrough": rollout(10000, 90000)}, nil)
	var g domain.Guardrail
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/production/guardrails", map[string]any{"flag": "checkout",
		"metric": "errors", "tolerance": 0.02, "action": "rollback", "control": "off", "treatments": []string{"on"}}, &g)
	var watcher domain.Guardrail
	s.must(201, "POST", "/api/v1/projects/"+p+"/environments/production/guardrails", map[string]any{"flag": "checkout",
		"metric": "crashes", "tolerance": 0.05, "control": "off", "treatments": []string{"on"}}, &watcher)
	var out domain.Guardrail
	s.must(200, "POST", "/api/v1/projects/"+p+"/environments/production/guardrails/"+g.ID+"/breach",
		map[string]any{"effect": 0.051, "interval": []float64{0.031, 0.071}, "p_value": 0.0004}, &out)
	if out.Status != "breached" || out.Breach == nil || out.Breach.ActionTaken != "turn_off" {
		t.Fatalf("breach: %+v", out)
	}
	var cfg domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &cfg)
	if cfg.On {
		t.Fatal("the rollback guardrail's breach must turn the flag off")
	}
	if st := s.guardrailStatus(p, "production", watcher.ID); st != "active" {
		t.Fatalf("the other guardrail on the rollout is %s after the automatic rollback, want active", st)
	}
	if n := len(s.disableEntries(g.ID)) + len(s.disableEntries(watcher.ID)); n != 0 {
		t.Fatalf("%d guardrail.disable entries after a breach", n)
	}
}

// TestGuardrailEndsWhenAnExperimentTakesItsRollout: an experiment starting on the flag replaces
// the fallthrough's plain rollout with its own (which has its own guardrails): the plain
// guardrail on it is disabled, naming the experiment's change; one on a rule's rollout stays.
func TestGuardrailEndsWhenAnExperimentTakesItsRollout(t *testing.T) {
	s, p := guardrailSetup(t)
	s.rollout(p, "checkout", "production")
	onFallthrough := s.plainGuardrail(p, "production", "checkout")
	s.rollout(p, "banner", "production")
	s.must(200, "PATCH", configPath(p, "banner", "production"), map[string]any{"fallthrough": map[string]any{"variation": "on", "rollout": nil},
		"rules": []any{map[string]any{"clauses": []any{map[string]any{"attribute": "beta", "op": "in", "values": []any{true}}},
			"serve": rollout(10000, 90000)}}}, nil)
	onRule := s.plainGuardrail(p, "production", "banner")
	for _, f := range []string{"checkout", "banner"} {
		createExperiment(s, p, f+"-x", f, map[string]any{"metrics": map[string]any{"primary": []string{"errors"}}})
		s.must(200, "POST", "/api/v1/projects/"+p+"/experiments/"+f+"-x/start", nil, nil)
	}
	if st := s.guardrailStatus(p, "production", onFallthrough.ID); st != "disabled" {
		t.Fatalf("the guardrail on the rollout the experiment replaced is %s, want disabled", st)
	}
	if entries := s.disableEntries(onFallthrough.ID); len(entries) != 1 || !strings.Contains(entries[0].Comment, "flag_config.experiment") {
		t.Fatalf("guardrail.disable entries: %+v", entries)
	}
	if st := s.guardrailStatus(p, "production", onRule.ID); st != "active" {
		t.Fatalf("the guardrail on a rule's rollout is %s after an experiment took the fallthrough, want active", st)
	}
}
