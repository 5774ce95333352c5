package api_test

import (
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
)

// TestAStartedExperimentsSplitChangesOnlyWithANewExperiment: the split of a running or
// stopped experiment (control, variations, context kind) is refused with a 412 naming the
// field and saying how to change it — a new experiment — because units assigned under two
// splits would be analysed together; a stopped experiment does not restart. The new
// experiment then serves its own split under its own key and salt.
func TestAStartedExperimentsSplitChangesOnlyWithANewExperiment(t *testing.T) {
	s := newStack(t)
	p, base := shopExperiments(s)
	xp := base + "/checkout-q4"
	createExperiment(s, p, "checkout-q4", "checkout", nil)
	s.must(200, "POST", xp+"/start", nil, nil)
	ramp := []any{map[string]any{"variation": "off", "weight": 20000}, map[string]any{"variation": "on", "weight": 80000}}
	for _, status := range []string{"running", "stopped"} {
		for field, body := range map[string]map[string]any{
			"variations":   {"variations": ramp},
			"control":      {"control": "on"},
			"context_kind": {"context_kind": "device"},
		} {
			e := s.refused(412, field, "PATCH", xp, body)
			if !strings.Contains(e.Message, "new experiment") {
				t.Fatalf("%s: changing %s: %q does not say how to change the split", status, field, e.Message)
			}
		}
		if status == "running" {
			s.must(200, "POST", xp+"/stop", nil, nil)
		}
	}
	if e := s.refused(412, "status", "POST", xp+"/start", nil); !strings.Contains(e.Message, "new experiment") {
		t.Fatalf("restarting a stopped experiment: %q does not say to start a new experiment", e.Message)
	}
	var x domain.Experiment
	s.must(200, "GET", xp, nil, &x)
	if x.Status != "stopped" || x.Variations[0].Weight != 50000 {
		t.Fatalf("the stopped experiment changed: %+v", x)
	}
	next := createExperiment(s, p, "checkout-q4-ramp", "checkout", map[string]any{"variations": ramp})
	s.must(200, "POST", base+"/checkout-q4-ramp/start", nil, nil)
	var cfg domain.FlagEnvironment
	s.must(200, "GET", configPath(p, "checkout", "production"), nil, &cfg)
	ro := cfg.Fallthrough.Rollout
	if ro == nil || ro.ExperimentKey != "checkout-q4-ramp" || ro.Salt != next.Salt || ro.Salt == x.Salt || ro.Variations[1].Weight != 80000 {
		t.Fatalf("the new experiment's rollout: %+v", cfg.Fallthrough)
	}
}
