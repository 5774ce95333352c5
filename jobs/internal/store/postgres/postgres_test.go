package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/schedule"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func open(t *testing.T) (*Store, *clock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, testenv.PostgresDB(t), 8, true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	s.SetClock(c.now)
	return s, c
}

// TestMigrationsLiveInTheirOwnSchema: the tables and goose's version table are in "jobs", so
// they never collide with the flag service's in the same database; migrating again is a no-op.
func TestMigrationsLiveInTheirOwnSchema(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if err := s.Migrate(ctx, nil); err != nil {
		t.Fatalf("second migration: %v", err)
	}
	for _, tc := range []struct {
		name, relation string
		exists         bool
	}{
		{"outbox", "jobs.alerts", true},
		{"goose versions", "jobs.goose_db_version", true},
		{"nothing in public", "public.alerts", false},
		{"no goose table in public", "public.goose_db_version", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *string
			if err := s.Pool.QueryRow(ctx, `SELECT to_regclass($1)::text`, tc.relation).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tc.exists {
				t.Fatalf("%s exists = %v, want %v", tc.relation, got != nil, tc.exists)
			}
		})
	}
}

// TestOutboxDeliversEachKeyOnce: an alert key is enqueued once, however often it is offered;
// concurrent claimers never get the same alert; an expired lease is claimed again as a
// recovery; a retry waits until it is due.
func TestOutboxDeliversEachKeyOnce(t *testing.T) {
	s, clk := open(t)
	ctx := context.Background()
	s.DefaultChannel = "C-DEFAULT"
	if _, err := s.PutProjectSettings(ctx, settings.Project{Project: "shop", SlackChannel: "C-SHOP", DigestEnabled: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ok, err := s.Enqueue(ctx, alert.Alert{Key: "k-1", Kind: alert.KindSRM, Project: "shop"})
		if err != nil || ok != (i == 0) {
			t.Fatalf("enqueue %d: %v %v", i, ok, err)
		}
	}
	for i := 2; i <= 20; i++ {
		if _, err := s.Enqueue(ctx, alert.Alert{Key: fmt.Sprintf("k-%d", i), Kind: alert.KindSRM, Project: "other"}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Alerts(ctx, "", 0)
	if err != nil || len(recs) != 20 {
		t.Fatalf("alerts: %d %v", len(recs), err)
	}
	channels := map[string]string{}
	for _, r := range recs {
		channels[r.Project] = r.Channel
	}
	if channels["shop"] != "C-SHOP" || channels["other"] != "C-DEFAULT" {
		t.Fatalf("channels: %v", channels)
	}

	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, ok, err := s.Claim(ctx, fmt.Sprint("w", w), time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				claimed[d.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != 20 {
		t.Fatalf("claimed %d distinct alerts, want 20", len(claimed))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("alert %d claimed %d times", id, n)
		}
	}
	// All leased: nothing to claim until the leases expire; then each comes back as a recovery.
	if _, ok, _ := s.Claim(ctx, "w", time.Minute); ok {
		t.Fatal("a leased alert was claimed again")
	}
	clk.add(2 * time.Minute)
	d, ok, err := s.Claim(ctx, "w", time.Minute)
	if err != nil || !ok || !d.Recovering || d.Attempts != 2 || d.FirstClaimedAt.IsZero() {
		t.Fatalf("recovery claim: %+v %v %v", d, ok, err)
	}
	if err := s.Retry(ctx, d.ID, clk.now().Add(10*time.Minute), "slack down"); err != nil {
		t.Fatal(err)
	}
	// Deliver everything else; the retried one is not due yet.
	for {
		o, ok, err := s.Claim(ctx, "w", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if o.ID == d.ID {
			t.Fatal("a retry was claimed before it was due")
		}
		if err := s.Sent(ctx, o.ID, "ts"); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(11 * time.Minute)
	again, ok, err := s.Claim(ctx, "w", time.Minute)
	if err != nil || !ok || again.ID != d.ID || again.Recovering {
		t.Fatalf("due retry: %+v %v %v", again, ok, err)
	}
	if err := s.Fail(ctx, again.ID, "failed", "gave up"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Claim(ctx, "w", time.Minute); ok {
		t.Fatal("a failed alert was claimed")
	}
}

func boolp(b bool) *bool { return &b }

func newChange(t *testing.T, s *Store, at time.Time, steps int) schedule.Change {
	t.Helper()
	c := schedule.Change{Project: "shop", Environment: "staging", EnvironmentID: "env-1", Flag: "checkout", Kind: "ramp",
		BaseVersion: 3, CreatedBy: schedule.Actor{Type: "user", ID: "u1", Name: "Alice"}, CreatedAt: at}
	for i := 1; i <= steps; i++ {
		c.Steps = append(c.Steps, schedule.Step{Position: i, ExecuteAt: at.Add(time.Duration(i) * time.Hour),
			Action: schedule.Action{Type: schedule.ActionToggle, On: boolp(i%2 == 1)}})
	}
	c, err := s.CreateChange(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStepsAreClaimedOnceAndInOrder: a step runs when due and after its predecessors, goes to
// one of several concurrent executors, and is based on the version the previous one left.
func TestStepsAreClaimedOnceAndInOrder(t *testing.T) {
	s, clk := open(t)
	ctx := context.Background()
	c := newChange(t, s, clk.now(), 3)
	if c.ID == 0 || len(c.Steps) != 3 || c.Status != schedule.StatusPending || c.CreatedBy.Name != "Alice" {
		t.Fatalf("created: %+v", c)
	}
	if got, _ := s.ClaimDueSteps(ctx, time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed before due: %+v", got)
	}
	// Steps 1 and 2 are both due, but 2 waits for 1.
	clk.add(2*time.Hour + time.Second)
	var mu sync.Mutex
	var all []schedule.Claim
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.ClaimDueSteps(ctx, time.Minute, 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			all = append(all, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(all) != 1 || all[0].Step.Position != 1 || all[0].Expected != 3 || all[0].Recovering {
		t.Fatalf("claims: %+v", all)
	}
	// A running step cannot be cancelled.
	if _, err := s.CancelChange(ctx, "shop", c.ID, schedule.Actor{Name: "Bob"}); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("cancel during a step: %v", err)
	}
	if err := s.CompleteStep(ctx, c.ID, 1, 4); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimDueSteps(ctx, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].Step.Position != 2 || got[0].Expected != 4 || got[0].Change.Status != schedule.StatusRunning {
		t.Fatalf("second claim: %+v %v", got, err)
	}
	// The executor dies: the lease expires and the step is claimed again, as a recovery.
	clk.add(2 * time.Minute)
	got, err = s.ClaimDueSteps(ctx, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].Step.Position != 2 || !got[0].Recovering || got[0].Step.Attempts != 2 {
		t.Fatalf("recovery claim: %+v %v", got, err)
	}
	if err := s.RetryStep(ctx, c.ID, 2, "flag service unavailable", clk.now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Pending again: it can be cancelled now, and nothing more runs.
	cc, err := s.CancelChange(ctx, "shop", c.ID, schedule.Actor{Type: "user", Name: "Bob"})
	if err != nil || cc.Status != schedule.StatusCancelled || cc.CancelledBy.Name != "Bob" ||
		cc.Steps[0].Status != schedule.StatusDone || cc.Steps[1].Status != schedule.StatusCancelled || cc.Steps[2].Status != schedule.StatusCancelled {
		t.Fatalf("cancelled: %+v %v", cc, err)
	}
	clk.add(24 * time.Hour)
	if got, _ := s.ClaimDueSteps(ctx, time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed after cancel: %+v", got)
	}
	if _, err := s.CancelChange(ctx, "shop", c.ID, schedule.Actor{}); !errors.Is(err, errs.ErrPreconditionFailed) {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := s.CancelChange(ctx, "other-project", c.ID, schedule.Actor{}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("cancel through another project: %v", err)
	}
}

// TestFailedStepCancelsTheRestAndAlertsOnce: a failure ends the change and enqueues its alert
// in the same transaction.
func TestFailedStepCancelsTheRestAndAlertsOnce(t *testing.T) {
	s, clk := open(t)
	ctx := context.Background()
	c := newChange(t, s, clk.now(), 3)
	clk.add(time.Hour)
	got, err := s.ClaimDueSteps(ctx, time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	a := alert.Alert{Key: fmt.Sprintf("scheduled:%d:1", c.ID), Kind: alert.KindScheduledChangeFailed, Project: "shop"}
	if err := s.FailStep(ctx, c.ID, 1, "edited since", a); err != nil {
		t.Fatal(err)
	}
	c, _ = s.Change(ctx, "shop", c.ID)
	if c.Status != schedule.StatusFailed || c.Failure != "edited since" || c.Steps[0].Status != schedule.StatusFailed ||
		c.Steps[1].Status != schedule.StatusCancelled || c.FinishedAt == nil {
		t.Fatalf("after failure: %+v", c)
	}
	recs, _ := s.Alerts(ctx, "shop", 0)
	if len(recs) != 1 || recs[0].Key != a.Key {
		t.Fatalf("alerts: %+v", recs)
	}
	list, err := s.Changes(ctx, ChangeFilter{Project: "shop", Status: schedule.StatusFailed})
	if err != nil || len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
}

// TestBreachReportsAreSingleFlight: one breach per guardrail is being reported at a time, and
// the alert of a completed report is enqueued once even if two replicas complete it.
func TestBreachReportsAreSingleFlight(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	b := Breach{GuardrailID: "g-1", Project: "shop", Environment: "production", Flag: "checkout", Metric: "errors", Decision: json.RawMessage(`{"effect":0.05}`)}
	id, started, err := s.StartBreach(ctx, b)
	if err != nil || !started {
		t.Fatal(started, err)
	}
	if _, again, err := s.StartBreach(ctx, b); err != nil || again {
		t.Fatalf("second start: %v %v", again, err)
	}
	pending, _ := s.ReportingBreaches(ctx)
	if len(pending) != 1 || pending[0].ID != id || string(pending[0].Decision) != `{"effect": 0.05}` {
		t.Fatalf("reporting: %+v", pending)
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	a := alert.Alert{Key: "guardrail:g-1:1", Kind: alert.KindGuardrailBreach, Project: "shop"}
	if ok, err := s.CompleteBreach(ctx, id, at, "serve_control", a); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := s.CompleteBreach(ctx, id, at, "serve_control", a); err != nil || ok {
		t.Fatalf("second completion enqueued again: %v %v", ok, err)
	}
	if pending, _ := s.ReportingBreaches(ctx); len(pending) != 0 {
		t.Fatalf("still reporting: %+v", pending)
	}
	// Once reported, a later breach of the same guardrail (re-enabled by a person) can start.
	late, started, err := s.StartBreach(ctx, b)
	if err != nil || !started {
		t.Fatalf("new breach after the first was reported: %v %v", started, err)
	}
	// A replica that started that report from an out-of-date list of active guardrails finds
	// the same breach at the flag service (its alert key): the breach stays listed once.
	if ok, err := s.CompleteBreach(ctx, late, at, "serve_control", a); err != nil || ok {
		t.Fatalf("completing the same breach from a late start: %v %v", ok, err)
	}
	if all, err := s.Breaches(ctx); err != nil || len(all) != 1 || all[0].ID != id || all[0].Status != "reported" {
		t.Fatalf("breaches after a late duplicate report: %+v %v", all, err)
	}
}

// TestDigestRunsOncePerSchedule: two replicas recording the same run produce one digest.
func TestDigestRunsOncePerSchedule(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	a := &alert.Alert{Key: "digest:shop:20261123T0900", Kind: alert.KindStaleDigest, Project: "shop", Digest: &alert.Digest{}}
	var wg sync.WaitGroup
	results := make([]bool, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.RecordDigest(ctx, "shop", at, 3, a)
			if err != nil {
				t.Error(err)
			}
			results[i] = ok
		}()
	}
	wg.Wait()
	n := 0
	for _, ok := range results {
		if ok {
			n++
		}
	}
	recs, _ := s.Alerts(ctx, "shop", 0)
	if n != 1 || len(recs) != 1 {
		t.Fatalf("recorded %d times, %d alerts", n, len(recs))
	}
}

// TestSettingsResolveFromFlagToProjectToDefault: thresholds come from the flag's override,
// then the project's, then the service's.
func TestSettingsResolveFromFlagToProjectToDefault(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	seven, ninety := 7, 90
	if _, err := s.PutProjectSettings(ctx, settings.Project{Project: "shop", StaleNoEvaluationsDays: &ninety, DigestEnabled: false, UpdatedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutFlagSettings(ctx, settings.Flag{Project: "shop", Flag: "a", SingleVariationDays: &seven}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutFlagSettings(ctx, settings.Flag{Project: "shop", Flag: "b", Ignore: true}); err != nil {
		t.Fatal(err)
	}
	p, err := s.ProjectSettings(ctx, "shop")
	if err != nil || p.DigestEnabled || p.UpdatedBy != "alice" {
		t.Fatalf("project: %+v %v", p, err)
	}
	flags, err := s.FlagSettings(ctx, "shop")
	if err != nil || len(flags) != 2 || !flags["b"].Ignore {
		t.Fatalf("flags: %+v %v", flags, err)
	}
	fa := flags["a"]
	cases := []struct {
		name string
		p    *settings.Project
		f    *settings.Flag
		want settings.Thresholds
	}{
		{"defaults", nil, nil, settings.DefaultThresholds},
		{"project", &p, nil, settings.Thresholds{NoEvaluationsDays: 90, SingleVariationDays: 14}},
		{"flag over project", &p, &fa, settings.Thresholds{NoEvaluationsDays: 90, SingleVariationDays: 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := settings.Resolve(settings.DefaultThresholds, tc.p, tc.f); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if other, _ := s.ProjectSettings(ctx, "other"); !other.DigestEnabled || other.SlackChannel != "" {
		t.Fatalf("unset project: %+v", other)
	}
	if err := s.DeleteFlagSettings(ctx, "shop", "a"); err != nil {
		t.Fatal(err)
	}
	if flags, _ := s.FlagSettings(ctx, "shop"); len(flags) != 1 {
		t.Fatalf("after delete: %+v", flags)
	}
}
