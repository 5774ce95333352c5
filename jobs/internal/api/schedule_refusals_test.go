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

// frontedExecutor is an executor reaching the flag service through a front that answers for
// it (without forwarding) when answer returns a status, and forwards the request otherwise.
func (h *harness) frontedExecutor(t *testing.T, answer func(*http.Request) (int, http.Header)) *schedule.Executor {
	t.Helper()
	target, _ := url.Parse(h.fs.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, hdr := answer(r); status != 0 {
			for k, v := range hdr {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, `{"error":{"code":"x","message":"%s"}}`, http.StatusText(status))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	exec := schedule.NewExecutor(h.store, flagsvc.New(front.URL, h.service, ""), slog.New(slog.DiscardHandler), nil)
	exec.Now = h.clock.now
	return exec
}

func (h *harness) nextAttemptAt(t *testing.T, changeID int64, position int) time.Time {
	t.Helper()
	var at time.Time
	if err := h.store.Pool.QueryRow(context.Background(), `SELECT next_attempt_at FROM scheduled_steps WHERE change_id = $1 AND position = $2`,
		changeID, position).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestRateLimitedStepWaitsRetryAfter: a 429 with Retry-After (seconds, or an HTTP date) puts
// the step's next attempt at least that far off — not the executor's own 5 s backoff — capped
// at RetryMax.
func TestRateLimitedStepWaitsRetryAfter(t *testing.T) {
	cases := []struct {
		name       string
		retryAfter func(now time.Time) http.Header
		want       time.Duration
	}{
		{name: "seconds", want: 30 * time.Second, retryAfter: func(time.Time) http.Header {
			return http.Header{"Retry-After": {"30"}}
		}},
		{name: "HTTP date", want: 40 * time.Second, retryAfter: func(now time.Time) http.Header {
			return http.Header{"Date": {now.Format(http.TimeFormat)}, "Retry-After": {now.Add(40 * time.Second).Format(http.TimeFormat)}}
		}},
		{name: "capped", want: schedule.RetryMax, retryAfter: func(time.Time) http.Header {
			return http.Header{"Retry-After": {"86400"}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			exec := h.frontedExecutor(t, func(r *http.Request) (int, http.Header) {
				if r.Method != http.MethodGet {
					return http.StatusTooManyRequests, tc.retryAfter(time.Now().UTC().Truncate(time.Second))
				}
				return 0, nil
			})
			var ch schedule.Change
			h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
				map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}}}}, &ch)
			h.clock.add(time.Hour + time.Second)
			claimed := h.clock.now()
			if n, err := exec.RunDue(context.Background()); err != nil || n != 1 {
				t.Fatalf("run: %d, %v", n, err)
			}
			got := h.change(t, ch.ID)
			if got.Steps[0].Status != schedule.StatusPending || got.Status == schedule.StatusFailed {
				t.Fatalf("after a 429: %+v", got)
			}
			// Postgres keeps microseconds.
			wait := h.nextAttemptAt(t, ch.ID, 1).Sub(claimed).Round(time.Millisecond)
			if wait < tc.want || wait > tc.want+2*time.Second {
				t.Fatalf("next attempt in %s, want %s", wait, tc.want)
			}
			h.clock.add(tc.want - time.Second)
			if n := h.runDue(t); n != 0 {
				t.Fatalf("retried before Retry-After: %d", n)
			}
		})
	}
}

// TestRejectedTokenWaitsForANewOne: the flag service answers 401 (the jobs service's token was
// revoked or expired). The change stays pending with a retry time and no alert, is tried again
// after the backoff, and is applied once the flag service accepts the token again. A 403 (the
// token lacks the right) still fails the change at once.
func TestRejectedTokenWaitsForANewOne(t *testing.T) {
	h := newHarness(t)
	var status atomic.Int32
	status.Store(http.StatusUnauthorized)
	exec := h.frontedExecutor(t, func(r *http.Request) (int, http.Header) {
		return int(status.Load()), nil
	})
	var ch schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": true}}}}, &ch)
	h.clock.add(time.Hour + time.Second)
	for attempt := 1; attempt <= 2; attempt++ {
		claimed := h.clock.now()
		if n, err := exec.RunDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("attempt %d: %d, %v", attempt, n, err)
		}
		got := h.change(t, ch.ID)
		if got.Status == schedule.StatusFailed || got.Steps[0].Status != schedule.StatusPending || got.Steps[0].Attempts != attempt ||
			!strings.Contains(got.Steps[0].Error, "401") {
			t.Fatalf("after a 401 (attempt %d): %+v", attempt, got)
		}
		if next := h.nextAttemptAt(t, ch.ID, 1); !next.After(claimed) {
			t.Fatalf("attempt %d: next attempt at %s, not after %s", attempt, next, claimed)
		}
		if n, err := exec.RunDue(context.Background()); err != nil || n != 0 {
			t.Fatalf("retried before the backoff: %d, %v", n, err)
		}
		h.clock.add(schedule.RetryMax)
	}
	h.deliverAll(t)
	if n := len(h.slack.Messages("")); n != 0 {
		t.Fatalf("%d alerts while the token is rejected", n)
	}

	status.Store(0) // a valid token again
	if n, err := exec.RunDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("after the token was fixed: %d, %v", n, err)
	}
	if got := h.change(t, ch.ID); got.Status != schedule.StatusDone || !h.config(t, "staging").On || h.scheduledWrites(t, "staging") != 1 {
		t.Fatalf("after the token was fixed: %+v", got)
	}

	// 403: the token is valid but lacks the right — a refusal, not a wait.
	status.Store(http.StatusForbidden)
	var denied schedule.Change
	h.must(t, 201, h.fs.Owner.Token, "POST", fmt.Sprintf(changes, "staging"), map[string]any{"steps": []any{
		map[string]any{"at": h.clock.now().Add(time.Hour), "action": map[string]any{"type": "toggle", "on": false}}}}, &denied)
	h.clock.add(time.Hour + time.Second)
	if n, err := exec.RunDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("403: %d, %v", n, err)
	}
	if got := h.change(t, denied.ID); got.Status != schedule.StatusFailed || got.Steps[0].Attempts != 1 || !strings.Contains(got.Failure, "refused") {
		t.Fatalf("after a 403: %+v", got)
	}
	h.deliverAll(t)
	if msgs := h.slack.Messages("C-DEFAULT"); len(msgs) != 1 {
		t.Fatalf("Slack after a 403: %+v", msgs)
	}
}
