package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// Store is what the executor needs of Postgres.
type Store interface {
	ClaimDueSteps(ctx context.Context, lease time.Duration, limit int) ([]Claim, error)
	CompleteStep(ctx context.Context, changeID int64, position int, version int64) error
	RetryStep(ctx context.Context, changeID int64, position int, reason string) error
	FailStep(ctx context.Context, changeID int64, position int, reason string, a alert.Alert) error
}

// FlagService is what the executor needs of the flag service (with the service token).
type FlagService interface {
	Toggle(ctx context.Context, project, flag, env string, on bool, w flagsvc.Write) (flagsvc.FlagEnvironment, error)
	PatchConfig(ctx context.Context, project, flag, env string, patch json.RawMessage, w flagsvc.Write) (flagsvc.FlagEnvironment, error)
	History(ctx context.Context, project, flag, env string, limit int) ([]flagsvc.ConfigVersion, error)
	Flag(ctx context.Context, project, flag string) (flagsvc.FlagDetail, error)
	Members(ctx context.Context) ([]flagsvc.Member, error)
}

// Executor applies due steps. Any number of replicas may run one: each step is leased to one.
type Executor struct {
	Store Store
	Flags FlagService
	Log   *slog.Logger
	// Lease bounds one step's execution before another executor may take it over (default 1 min).
	Lease time.Duration
	// MaxDelay is how late a step may still be applied when the flag service was unavailable
	// at its time (default 1 h); later, it fails and alerts instead.
	MaxDelay     time.Duration
	DashboardURL string
	// Wake is called after an alert was enqueued.
	Wake func()
	Now  func() time.Time

	applied *prometheus.CounterVec
	lag     prometheus.Histogram
}

// NewExecutor returns an executor registering its metrics on reg.
func NewExecutor(st Store, fs FlagService, log *slog.Logger, reg prometheus.Registerer) *Executor {
	e := &Executor{Store: st, Flags: fs, Log: log,
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_scheduled_steps_total",
			Help: "Scheduled change steps by outcome (applied, recovered, retried, failed)."}, []string{"outcome"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "jobs_scheduled_step_lag_seconds",
			Help: "How late after their time scheduled steps were applied.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(e.applied, e.lag)
	}
	return e
}

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// RunDue applies every due step (in order within each change) and reports how many it handled.
func (e *Executor) RunDue(ctx context.Context) (int, error) {
	lease := e.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	handled := 0
	for {
		claims, err := e.Store.ClaimDueSteps(ctx, lease, 20)
		if err != nil {
			return handled, err
		}
		if len(claims) == 0 {
			return handled, nil
		}
		for _, c := range claims {
			sctx, cancel := context.WithTimeout(ctx, lease-lease/8)
			err := e.apply(sctx, c)
			cancel()
			if err != nil {
				return handled, err
			}
			handled++
		}
	}
}

// apply makes one step's write, based on the expected version, and records the outcome.
func (e *Executor) apply(ctx context.Context, c Claim) error {
	ch, st := c.Change, c.Step
	log := e.Log.With("change", ch.ID, "step", st.Position, "project", ch.Project, "environment", ch.Environment, "flag", ch.Flag)
	w := flagsvc.Write{IfMatch: c.Expected, Comment: Comment(ch, st), Scheduled: true}
	var fe flagsvc.FlagEnvironment
	var err error
	switch st.Action.Type {
	case ActionToggle:
		fe, err = e.Flags.Toggle(ctx, ch.Project, ch.Flag, ch.Environment, *st.Action.On, w)
	default:
		fe, err = e.Flags.PatchConfig(ctx, ch.Project, ch.Flag, ch.Environment, st.Action.MergePatch(), w)
	}
	if err == nil {
		e.applied.WithLabelValues("applied").Inc()
		e.lag.Observe(e.now().Sub(st.ExecuteAt).Seconds())
		log.Info("scheduled step applied", "version", fe.Version, "action", st.Action.Describe())
		return e.Store.CompleteStep(ctx, ch.ID, st.Position, fe.Version)
	}
	if errors.Is(err, errs.ErrConflict) {
		// Either our own earlier attempt went through before we could record it, or the
		// flag was edited since the change was scheduled.
		if v, ok := e.ownWrite(ctx, ch, st, c.Expected); ok {
			e.applied.WithLabelValues("recovered").Inc()
			log.Info("scheduled step had been applied by an earlier attempt", "version", v)
			return e.Store.CompleteStep(ctx, ch.ID, st.Position, v)
		}
		return e.fail(ctx, c, fmt.Sprintf("the flag was edited since the change was scheduled (the change was based on version %d)", c.Expected), true, log)
	}
	if flagsvc.Retryable(err) || errors.Is(err, flagsvc.ErrNoToken) {
		if late := e.now().Sub(st.ExecuteAt); late > e.maxDelay() {
			return e.fail(ctx, c, fmt.Sprintf("the flag service was unavailable for %s after the step's time (%v)", late.Round(time.Second), err), false, log)
		}
		e.applied.WithLabelValues("retried").Inc()
		log.Warn("scheduled step not applied yet; will retry", "err", err)
		return e.Store.RetryStep(ctx, ch.ID, st.Position, err.Error())
	}
	return e.fail(ctx, c, "the flag service refused the change: "+strings.TrimPrefix(errMessage(err), "flag service: "), false, log)
}

func (e *Executor) maxDelay() time.Duration {
	if e.MaxDelay <= 0 {
		return time.Hour
	}
	return e.MaxDelay
}

func errMessage(err error) string {
	var ee *errs.Error
	if errors.As(err, &ee) {
		if ee.Field != "" {
			return ee.Message + " (" + ee.Field + ")"
		}
		return ee.Message
	}
	return err.Error()
}

// ownWrite looks for this step's write in the configuration's history (by the marker its
// comment starts with), newer than the version it was based on.
func (e *Executor) ownWrite(ctx context.Context, ch Change, st Step, expected int64) (int64, bool) {
	hist, err := e.Flags.History(ctx, ch.Project, ch.Flag, ch.Environment, 20)
	if err != nil {
		e.Log.Warn("cannot read the flag's history", "change", ch.ID, "err", err)
		return 0, false
	}
	marker := Marker(ch.ID, st.Position, len(ch.Steps)) + " "
	for _, v := range hist {
		if v.Version > expected && strings.HasPrefix(v.Comment, marker) {
			return v.Version, true
		}
	}
	return 0, false
}

// fail records the failure, cancels the later steps and alerts, in one transaction.
func (e *Executor) fail(ctx context.Context, c Claim, reason string, edited bool, log *slog.Logger) error {
	e.applied.WithLabelValues("failed").Inc()
	log.Warn("scheduled step failed", "reason", reason)
	ch, st := c.Change, c.Step
	sf := &alert.ScheduledFailed{ChangeID: ch.ID, Step: st.Position, Steps: len(ch.Steps), Environment: ch.Environment, Flag: ch.Flag,
		What: st.Action.Describe(), Reason: reason, Edited: edited, ExpectedVersion: c.Expected, ScheduledBy: ActorLabel(ch.CreatedBy),
		Owner: e.owner(ctx, ch)}
	if e.DashboardURL != "" {
		sf.DashboardURL = strings.TrimRight(e.DashboardURL, "/") + "/p/" + url.PathEscape(ch.Project) + "/flags/" +
			url.PathEscape(ch.Flag) + "?environment=" + url.QueryEscape(ch.Environment)
	}
	a := alert.Alert{Key: fmt.Sprintf("scheduled:%d:%d", ch.ID, st.Position), Kind: alert.KindScheduledChangeFailed,
		Project: ch.Project, At: e.now().UTC(), ScheduledFailed: sf}
	if err := e.Store.FailStep(ctx, ch.ID, st.Position, reason, a); err != nil {
		return err
	}
	if e.Wake != nil {
		e.Wake()
	}
	return nil
}

func (e *Executor) owner(ctx context.Context, ch Change) alert.Owner {
	f, err := e.Flags.Flag(ctx, ch.Project, ch.Flag)
	if err != nil || f.OwnerID == "" {
		return alert.Owner{}
	}
	ms, err := e.Flags.Members(ctx)
	if err != nil {
		return alert.Owner{}
	}
	for _, m := range ms {
		if m.ID == f.OwnerID {
			return alert.Owner{Name: m.Name, Email: m.Email}
		}
	}
	return alert.Owner{}
}

var (
	_ FlagService = (*flagsvc.Client)(nil)
)
