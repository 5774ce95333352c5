package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/schedule"
	"github.com/switchyard-io/switchyard/jobs/internal/stacktest"
)

const changes = "/v1/projects/shop/environments/%s/flags/checkout/scheduled-changes"

// TestScheduledRampRunsInOrder: a ramp 5% → 25% → 50% → 100% is applied step by step at its
// times, through the flag service, audited as scheduled changes, each based on the version
// the previous step left.
func TestScheduledRampRunsInOrder(t *testing.T) {
	h := newHarness(t)
	t0 := h.clock.now()
	var ch schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "production"), map[string]any{
		"comment": "launch the new checkout",
		"ramp": map[string]any{"variation": "on", "rest": "off", "steps": []any{
			map[string]any{"at": t0.Add(time.Hour), "percent": 5}, map[string]any{"at": t0.Add(2 * time.Hour), "percent": 25},
			map[string]any{"at": t0.Add(3 * time.Hour), "percent": 50}, map[string]any{"at": t0.Add(4 * time.Hour), "percent": 100}}},
	}, &ch)
	base := h.config(t, "production").Version
	if ch.Kind != "ramp" || len(ch.Steps) != 4 || ch.BaseVersion != base || ch.Status != schedule.StatusPending {
		t.Fatalf("created: %+v (base version %d)", ch, base)
	}
	if n := h.runDue(t); n != 0 {
		t.Fatalf("%d steps ran before their time", n)
	}
	h.clock.add(90 * time.Minute)
	if n := h.runDue(t); n != 1 {
		t.Fatalf("%d steps ran, want 1", n)
	}
	cfg := h.config(t, "production")
	if !cfg.On || cfg.Fallthrough.Rollout == nil || cfg.Fallthrough.Rollout.Variations[0] != (flagsvc.Weighted{Variation: "on", Weight: 5000}) {
		t.Fatalf("after step 1: %+v", cfg)
	}
	for i := 2; i <= 4; i++ {
		h.clock.add(time.Hour)
		if n := h.runDue(t); n != 1 {
			t.Fatalf("step %d: %d steps ran, want 1", i, n)
		}
	}
	cfg = h.config(t, "production")
	if w := cfg.Fallthrough.Rollout.Variations; w[0].Weight != 100000 || w[1].Weight != 0 {
		t.Fatalf("after the ramp: %+v", w)
	}
	// History: four scheduled versions, in order, each with the step's marker.
	hist := h.history(t, "production")
	var scheduled []flagsvc.ConfigVersion
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Change == "scheduled" {
			scheduled = append(scheduled, hist[i])
		}
	}
	if len(scheduled) != 4 {
		t.Fatalf("scheduled history entries: %+v", hist)
	}
	for i, v := range scheduled {
		if !strings.HasPrefix(v.Comment, schedule.Marker(ch.ID, i+1, 4)+" ") || !strings.Contains(v.Comment, "launch the new checkout") ||
			v.Actor.Type != "token" {
			t.Fatalf("entry %d: %+v", i, v)
		}
		if i > 0 && v.Version <= scheduled[i-1].Version {
			t.Fatalf("out of order: %+v", scheduled)
		}
	}
	if !strings.Contains(scheduled[1].Comment, "on 25%, off 75%") {
		t.Fatalf("step 2 comment: %q", scheduled[1].Comment)
	}
	// The audit log reads as scheduled changes.
	var audit struct {
		Items []struct {
			Action  string `json:"action"`
			Comment string `json:"comment"`
		} `json:"items"`
	}
	h.fs.Owner.Must(t, "GET", "/api/v1/audit?action=flag_config.scheduled", nil, &audit)
	if len(audit.Items) != 4 {
		t.Fatalf("audit entries: %+v", audit.Items)
	}
	var done schedule.Change
	h.must(t, 200, h.fs.Owner.Token, "GET", fmt.Sprintf("/v1/projects/shop/scheduled-changes/%d", ch.ID), nil, &done)
	if done.Status != schedule.StatusDone || done.FinishedAt == nil || *done.Steps[0].ExpectedVersion != base ||
		*done.Steps[1].ExpectedVersion != *done.Steps[0].ResultVersion || *done.Steps[3].ResultVersion != h.config(t, "production").Version {
		t.Fatalf("finished change: %+v", done)
	}
	if n := len(h.slack.Calls("")); n != 0 {
		t.Fatalf("%d Slack calls for a successful ramp", n)
	}
}

// TestEditedFlagFailsSafelyAndAlerts: a change whose flag was edited after it was scheduled is
// not applied (the edit stands), the rest of the ramp is cancelled, and Slack is told once.
func TestEditedFlagFailsSafelyAndAlerts(t *testing.T) {
	h := newHarness(t)
	t0 := h.clock.now()
	var ch schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": t0.Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}},
		map[string]any{"at": t0.Add(2 * time.Hour), "action": map[string]any{"type": "patch", "patch": map[string]any{"off_variation": "on"}}}}}, &ch)
	// Someone edits the flag in between.
	h.fs.Owner.Must(t, "PATCH", stacktest.ConfigPath("shop", "checkout", "staging"), map[string]any{"fallthrough": map[string]any{"variation": "off"}, "comment": "hotfix"}, nil)
	edited := h.config(t, "staging")
	h.clock.add(time.Hour + time.Minute)
	h.runDue(t)
	after := h.config(t, "staging")
	if after.Version != edited.Version || after.On {
		t.Fatalf("the scheduled change clobbered the edit: %+v", after)
	}
	var failed schedule.Change
	h.must(t, 200, h.fs.Owner.Token, "GET", fmt.Sprintf("/v1/projects/shop/scheduled-changes/%d", ch.ID), nil, &failed)
	if failed.Status != schedule.StatusFailed || failed.Steps[0].Status != schedule.StatusFailed || failed.Steps[1].Status != schedule.StatusCancelled ||
		!strings.Contains(failed.Failure, "edited since") {
		t.Fatalf("change: %+v", failed)
	}
	// One alert, delivered once, however often the outbox is drained.
	h.deliverAll(t)
	h.deliverAll(t)
	msgs := h.slack.Messages("C-DEFAULT")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, fmt.Sprintf("Scheduled change #%d step 1 of 2 (turn on) for checkout in staging was not applied", ch.ID)) ||
		!strings.Contains(string(msgs[0].Blocks), "The remaining steps were cancelled.") {
		t.Fatalf("Slack: %+v", msgs)
	}
	if hist := h.history(t, "staging"); hist[0].Change == "scheduled" {
		t.Fatalf("a scheduled write happened: %+v", hist[0])
	}
}

// TestCancelledChangeNeverRuns: a change cancelled before its time is not applied, and cannot
// be cancelled twice.
func TestCancelledChangeNeverRuns(t *testing.T) {
	h := newHarness(t)
	var ch schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}}}}, &ch)
	before := h.config(t, "staging")
	var cancelled schedule.Change
	h.must(t, 200, h.fs.Owner.Token, "POST", fmt.Sprintf("/v1/projects/shop/scheduled-changes/%d/cancel", ch.ID), nil, &cancelled)
	if cancelled.Status != schedule.StatusCancelled || cancelled.CancelledBy == nil || cancelled.Steps[0].Status != schedule.StatusCancelled {
		t.Fatalf("cancelled: %+v", cancelled)
	}
	h.clock.add(2 * time.Hour)
	if n := h.runDue(t); n != 0 {
		t.Fatalf("%d steps of a cancelled change ran", n)
	}
	if after := h.config(t, "staging"); after.Version != before.Version {
		t.Fatalf("flag changed: %d → %d", before.Version, after.Version)
	}
	h.must(t, 412, h.fs.Owner.Token, "POST", fmt.Sprintf("/v1/projects/shop/scheduled-changes/%d/cancel", ch.ID), nil, nil)
	var list struct {
		Items []schedule.Change `json:"items"`
	}
	h.must(t, 200, h.fs.Owner.Token, "GET", "/v1/projects/shop/scheduled-changes?status=cancelled&flag=checkout", nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != ch.ID {
		t.Fatalf("list: %+v", list.Items)
	}
}

// TestInterruptedStepIsAppliedOnce: an executor that made the write and died before recording
// it leaves a lease; the next executor gets a conflict, finds its own write by the marker in
// the history, and records it instead of failing or writing again.
func TestInterruptedStepIsAppliedOnce(t *testing.T) {
	h := newHarness(t)
	var ch schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}}}}, &ch)
	h.clock.add(time.Hour + time.Second)
	claims, err := h.store.ClaimDueSteps(context.Background(), time.Minute, 10)
	if err != nil || len(claims) != 1 {
		t.Fatal(claims, err)
	}
	c := claims[0]
	client := flagsvc.New(h.fs.URL, h.service, "")
	if _, err := client.Toggle(context.Background(), "shop", "checkout", "staging", true,
		flagsvc.Write{IfMatch: c.Expected, Comment: schedule.Comment(c.Change, c.Step), Scheduled: true}); err != nil {
		t.Fatal(err)
	}
	// ... and the executor died. Nothing happens while its lease holds.
	if n := h.runDue(t); n != 0 {
		t.Fatalf("a leased step was taken: %d", n)
	}
	h.clock.add(2 * time.Minute)
	if n := h.runDue(t); n != 1 {
		t.Fatalf("recovery ran %d steps", n)
	}
	got, _ := h.store.Change(context.Background(), "shop", ch.ID)
	if got.Status != schedule.StatusDone || *got.Steps[0].ResultVersion != h.config(t, "staging").Version {
		t.Fatalf("after recovery: %+v", got)
	}
	n := 0
	for _, v := range h.history(t, "staging") {
		if v.Change == "scheduled" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d scheduled writes, want 1", n)
	}
	h.deliverAll(t)
	if n := len(h.slack.Messages("")); n != 0 {
		t.Fatalf("%d alerts for a recovered step", n)
	}
}

// TestEditedFlagFailureNamesTheFirstOfManyEdits: with more edits since the step's version than
// the executor reads of the newest history, its failure still names the first edits after that
// version — the one that made the step stale first — and counts the others.
func TestEditedFlagFailureNamesTheFirstOfManyEdits(t *testing.T) {
	h := newHarness(t)
	owner := h.fs.Owner
	at := h.clock.now().Add(time.Hour)
	var ch schedule.Change
	h.must(t, 201, owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": at, "action": map[string]any{"type": "toggle", "on": false}}}}, &ch)
	const edits = 25 // more than the newest versions the executor reads first (20)
	for i := 1; i <= edits; i++ {
		owner.Must(t, "PATCH", stacktest.ConfigPath("shop", "checkout", "staging"),
			map[string]any{"off_variation": []string{"off", "on"}[i%2], "comment": fmt.Sprintf("edit number %d", i)}, nil)
	}
	h.clock.add(time.Hour + time.Second)
	if n := h.runDue(t); n != 1 {
		t.Fatalf("%d steps handled", n)
	}
	got := h.change(t, ch.ID)
	if got.Status != schedule.StatusFailed {
		t.Fatalf("change: %+v", got)
	}
	for _, w := range []string{
		fmt.Sprintf("(the change was based on version %d): version %d, an edit by ", ch.BaseVersion, ch.BaseVersion+1),
		`("edit number 1")`, `("edit number 2")`, `("edit number 3")`, fmt.Sprintf("; and %d more", edits-3),
	} {
		if !strings.Contains(got.Failure, w) {
			t.Fatalf("failure %q does not name %q", got.Failure, w)
		}
	}
	if strings.Contains(got.Failure, `("edit number 4")`) {
		t.Fatalf("failure names more edits than it shows at most: %q", got.Failure)
	}
}

// TestEditedFlagFailureNamesTheEdits: when the flag was changed after a step was scheduled, the
// failure — the change's reason, the step's error and the Slack alert — names each version
// since the one the step was based on: what kind of change, who made it, when, its comment.
func TestEditedFlagFailureNamesTheEdits(t *testing.T) {
	h := newHarness(t)
	owner := h.fs.Owner
	owner.Must(t, "POST", "/api/v1/projects/shop/metrics", map[string]any{"key": "conversion", "kind": "proportion", "event_key": "purchase"}, nil)
	cases := []struct {
		name, env string
		edit      func(t *testing.T)
		// want are the strings the failure must hold about the edit (besides its version,
		// author and time, checked against the flag service's history).
		want []string
	}{
		{name: "an experiment started", env: "production", edit: func(t *testing.T) {
			owner.Must(t, "POST", "/api/v1/projects/shop/experiments", map[string]any{"key": "checkout-q4", "environment": "production", "flag": "checkout",
				"control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
				"metrics": map[string]any{"primary": []string{"conversion"}}}, nil)
			owner.Must(t, "POST", "/api/v1/projects/shop/experiments/checkout-q4/start", nil, nil)
		}, want: []string{"an experiment start by", `("experiment checkout-q4 started")`}},
		{name: "a plain edit", env: "staging", edit: func(t *testing.T) {
			owner.Must(t, "PATCH", stacktest.ConfigPath("shop", "checkout", "staging"),
				map[string]any{"off_variation": "on", "comment": "hotfix: serve on when off"}, nil)
		}, want: []string{"an edit by", `("hotfix: serve on when off")`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := h.clock.now().Add(time.Hour)
			var ch schedule.Change
			h.must(t, 201, owner.Token, "POST", fmt.Sprintf(changes, tc.env), map[string]any{"steps": []any{
				map[string]any{"at": at, "action": map[string]any{"type": "toggle", "on": false}}}}, &ch)
			tc.edit(t)
			hist := h.history(t, tc.env)
			edit := hist[0]
			if edit.Version != ch.BaseVersion+1 {
				t.Fatalf("history after the edit: %+v (base version %d)", hist, ch.BaseVersion)
			}
			h.clock.add(time.Hour + time.Second)
			if n := h.runDue(t); n != 1 {
				t.Fatalf("%d steps handled", n)
			}
			if after := h.config(t, tc.env); after.Version != edit.Version {
				t.Fatalf("the scheduled change was applied: version %d → %d", edit.Version, after.Version)
			}
			got := h.change(t, ch.ID)
			want := append([]string{
				fmt.Sprintf("the flag was edited since the change was scheduled (the change was based on version %d): version %d, ", ch.BaseVersion, edit.Version),
				edit.Actor.Name, edit.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"),
			}, tc.want...)
			if got.Status != schedule.StatusFailed || got.Steps[0].Error != got.Failure {
				t.Fatalf("change: %+v", got)
			}
			for _, w := range want {
				if !strings.Contains(got.Failure, w) {
					t.Fatalf("failure %q does not name %q", got.Failure, w)
				}
			}
			if strings.Contains(got.Failure, "more") {
				t.Fatalf("failure counts edits that were not made: %q", got.Failure)
			}
			h.deliverAll(t)
			var msg string
			for _, m := range h.slack.Messages("C-DEFAULT") {
				if strings.Contains(m.Text, fmt.Sprintf("Scheduled change #%d ", ch.ID)) {
					msg = m.Text + string(m.Blocks)
				}
			}
			for _, w := range want[1:] {
				// Blocks are JSON: quotes in the comment are escaped there, not in the text.
				if !strings.Contains(msg, w) {
					t.Fatalf("Slack alert does not name %q: %s", w, msg)
				}
			}
		})
	}
}
