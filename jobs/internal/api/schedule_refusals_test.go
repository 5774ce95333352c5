package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/schedule"
)

func (h *harness) change(t *testing.T, id int64) schedule.Change {
	t.Helper()
	var c schedule.Change
	h.must(t, 200, h.fs.Owner.Token, "GET", fmt.Sprintf("/v1/projects/shop/scheduled-changes/%d", id), nil, &c)
	return c
}

// lossyExecutor is an executor reaching the flag service through a proxy that answers 502
// (after forwarding the request) when lose says so: a lost answer.
func (h *harness) lossyExecutor(t *testing.T, lose func(*http.Request) bool) *schedule.Executor {
	t.Helper()
	target, _ := url.Parse(h.fs.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if lose(r.Request) {
			r.StatusCode, r.Status = http.StatusBadGateway, "502 Bad Gateway"
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("")), 0
			r.Header.Del("Content-Length")
		}
		return nil
	}
	lossy := httptest.NewServer(proxy)
	t.Cleanup(lossy.Close)
	exec := schedule.NewExecutor(h.store, flagsvc.New(lossy.URL, h.service, ""), slog.New(slog.DiscardHandler), nil)
	exec.Now = h.clock.now
	return exec
}

func (h *harness) scheduledWrites(t *testing.T, env string) int {
	t.Helper()
	n := 0
	for _, v := range h.history(t, env) {
		if v.Change == "scheduled" {
			n++
		}
	}
	return n
}

// TestRunningExperimentRefusalIsPassedThrough: a scheduled rollout that would change a running
// experiment's split is refused by the flag service (409 naming the field); the change fails
// at once with the service's message — which says what to do — in the API and in Slack, and
// is not retried.
func TestRunningExperimentRefusalIsPassedThrough(t *testing.T) {
	h := newHarness(t)
	owner := h.fs.Owner
	owner.Must(t, "POST", "/api/v1/projects/shop/metrics", map[string]any{"key": "conversion", "kind": "proportion", "event_key": "purchase"}, nil)
	owner.Must(t, "POST", "/api/v1/projects/shop/experiments", map[string]any{"key": "checkout-q4", "environment": "production", "flag": "checkout",
		"control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
		"metrics": map[string]any{"primary": []string{"conversion"}}}, nil)
	owner.Must(t, "POST", "/api/v1/projects/shop/experiments/checkout-q4/start", nil, nil)
	var ch schedule.Change
	h.must(t, 201, owner.Token, "POST", fmt.Sprintf(changes, "production"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "rollout",
			"weights": []any{map[string]any{"variation": "on", "weight": 25000}, map[string]any{"variation": "off", "weight": 75000}}}}}}, &ch)
	before := h.config(t, "production")
	h.clock.add(time.Hour + time.Second)
	if n := h.runDue(t); n != 1 {
		t.Fatalf("%d steps handled", n)
	}
	got := h.change(t, ch.ID)
	if got.Status != schedule.StatusFailed || got.Steps[0].Status != schedule.StatusFailed || got.Steps[0].Attempts != 1 ||
		!strings.Contains(got.Failure, "stop and conclude the experiment") || !strings.Contains(got.Failure, "fallthrough.rollout") ||
		strings.Contains(got.Failure, "edited since") || got.Steps[0].Error != got.Failure {
		t.Fatalf("change: %+v", got)
	}
	h.clock.add(time.Hour)
	if n := h.runDue(t); n != 0 {
		t.Fatalf("a refused step was tried again: %d", n)
	}
	if after := h.config(t, "production"); after.Version != before.Version {
		t.Fatalf("flag changed: %d → %d", before.Version, after.Version)
	}
	h.deliverAll(t)
	msgs := h.slack.Messages("C-DEFAULT")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "stop and conclude the experiment") {
		t.Fatalf("Slack: %+v", msgs)
	}
}

// TestLostAnswerIsRetriedWithBackoffAndAppliedOnce: the flag service commits a scheduled write
// but the answer is lost (a proxy turns it into a 502). The step is retried — after a backoff,
// not in a loop — and the retry finds the earlier write instead of writing again.
func TestLostAnswerIsRetriedWithBackoffAndAppliedOnce(t *testing.T) {
	h := newHarness(t)
	var writes atomic.Int32
	exec := h.lossyExecutor(t, func(r *http.Request) bool {
		if r.Method != http.MethodGet {
			writes.Add(1)
			return true
		}
		return false
	})

	var ch schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}}}}, &ch)
	h.clock.add(time.Hour + time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := exec.RunDue(ctx)
	if err != nil || n != 1 || writes.Load() != 1 {
		t.Fatalf("first run: handled %d, %d writes, %v (want one attempt, then a backoff)", n, writes.Load(), err)
	}
	got := h.change(t, ch.ID)
	if got.Steps[0].Status != schedule.StatusPending || got.Steps[0].Error == "" || got.Status == schedule.StatusFailed {
		t.Fatalf("after a 502: %+v", got)
	}
	if n := h.runDue(t); n != 0 {
		t.Fatalf("retried before the backoff: %d", n)
	}
	h.clock.add(schedule.RetryBase)
	if n := h.runDue(t); n != 1 {
		t.Fatalf("retry handled %d", n)
	}
	got = h.change(t, ch.ID)
	if got.Status != schedule.StatusDone || got.Steps[0].Attempts != 2 || *got.Steps[0].ResultVersion != h.config(t, "staging").Version {
		t.Fatalf("after the retry: %+v", got)
	}
	if n := h.scheduledWrites(t, "staging"); n != 1 {
		t.Fatalf("%d scheduled writes, want 1", n)
	}
	h.deliverAll(t)
	if n := len(h.slack.Messages("")); n != 0 {
		t.Fatalf("%d alerts for an applied step", n)
	}
}

// TestMissedStepIsNotAppliedLate: the jobs service was down at a step's time. Back within
// -scheduler-max-delay the step is applied; later, it fails and alerts instead of running late
// (and a ramp's steps are not all applied at once).
func TestMissedStepIsNotAppliedLate(t *testing.T) {
	h := newHarness(t)
	t0 := h.clock.now()
	var ramp, soon schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "production"), map[string]any{
		"ramp": map[string]any{"variation": "on", "rest": "off", "steps": []any{
			map[string]any{"at": t0.Add(time.Hour), "percent": 5}, map[string]any{"at": t0.Add(2 * time.Hour), "percent": 50},
			map[string]any{"at": t0.Add(3 * time.Hour), "percent": 100}}}}, &ramp)
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": t0.Add(3*time.Hour + 30*time.Minute), "action": map[string]any{"type": "toggle", "on": true}}}}, &soon)
	before := h.config(t, "production")
	// Back up 4 hours after t0: the ramp's steps are 3 h, 2 h and 1 h late; the toggle 30 min.
	h.clock.add(4 * time.Hour)
	h.runDue(t)
	if after := h.config(t, "production"); after.Version != before.Version {
		t.Fatalf("a late ramp was applied: version %d → %d", before.Version, after.Version)
	}
	got := h.change(t, ramp.ID)
	if got.Status != schedule.StatusFailed || got.Steps[0].Status != schedule.StatusFailed || got.Steps[1].Status != schedule.StatusCancelled ||
		!strings.Contains(got.Failure, "late") || !strings.Contains(got.Failure, "schedule it again") {
		t.Fatalf("late ramp: %+v", got)
	}
	if got := h.change(t, soon.ID); got.Status != schedule.StatusDone || !h.config(t, "staging").On {
		t.Fatalf("a step 30 min late was not applied: %+v", got)
	}
	h.deliverAll(t)
	msgs := h.slack.Messages("C-DEFAULT")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, fmt.Sprintf("Scheduled change #%d step 1 of 3", ramp.ID)) || !strings.Contains(msgs[0].Text, "late") {
		t.Fatalf("Slack: %+v", msgs)
	}
}

// TestConflictWithUnreadableHistoryIsRetried: a write went through but its answer was lost;
// the retry's conflict cannot be explained while the flag's history cannot be read. The step
// is retried (not failed as "edited": the edit was its own), and recorded once the history
// shows the write.
func TestConflictWithUnreadableHistoryIsRetried(t *testing.T) {
	h := newHarness(t)
	var writes atomic.Int32
	exec := h.lossyExecutor(t, func(r *http.Request) bool {
		if r.Method != http.MethodGet {
			return writes.Add(1) == 1
		}
		return strings.HasSuffix(r.URL.Path, "/history")
	})
	var ch schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}}}}, &ch)
	h.clock.add(time.Hour + time.Second)
	for i := 0; i < 2; i++ { // the lost answer, then the conflict
		if n, err := exec.RunDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("run %d: %d, %v", i, n, err)
		}
		h.clock.add(time.Minute)
	}
	if got := h.change(t, ch.ID); got.Status == schedule.StatusFailed || got.Steps[0].Status != schedule.StatusPending {
		t.Fatalf("after a conflict with the history unreadable: %+v", got)
	}
	if n := h.runDue(t); n != 1 {
		t.Fatalf("handled %d", n)
	}
	if got := h.change(t, ch.ID); got.Status != schedule.StatusDone || h.scheduledWrites(t, "staging") != 1 {
		t.Fatalf("after the history could be read: %+v", got)
	}
	h.deliverAll(t)
	if n := len(h.slack.Messages("")); n != 0 {
		t.Fatalf("%d alerts for an applied step", n)
	}
}
