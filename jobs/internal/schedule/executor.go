package schedule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
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
	RetryStep(ctx context.Context, changeID int64, position int, reason string, retryAt time.Time) error
	FailStep(ctx context.Context, changeID int64, position int, reason string, a alert.Alert) error
}

// FlagService is what the executor needs of the flag service (with the service token).
type FlagService interface {
	Toggle(ctx context.Context, project, flag, env string, on bool, w flagsvc.Write) (flagsvc.FlagEnvironment, error)
	PatchConfig(ctx context.Context, project, flag, env string, patch json.RawMessage, w flagsvc.Write) (flagsvc.FlagEnvironment, error)
	History(ctx context.Context, project, flag, env string, before int64, limit int) ([]flagsvc.ConfigVersion, error)
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
	if late := e.now().Sub(st.ExecuteAt); late > e.maxDelay() {
		return e.tooLate(ctx, c, late, log)
	}
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
	if f := conflictField(err); errors.Is(err, errs.ErrConflict) && (f == "version" || f == "") {
		// Either our own earlier attempt went through before we could record it, or the
		// flag was edited since the change was scheduled.
		hist, herr := e.history(ctx, ch, c.Expected)
		v, ok := ownWrite(hist, ch, st, c.Expected)
		switch {
		case ok:
			e.applied.WithLabelValues("recovered").Inc()
			log.Info("scheduled step had been applied by an earlier attempt", "version", v)
			return e.Store.CompleteStep(ctx, ch.ID, st.Position, v)
		case waits(herr):
			// Failing now could report as edited a flag our own write changed.
			return e.retry(ctx, c, fmt.Errorf("reading the flag's history after a conflict: %w", herr), log)
		}
		reason := fmt.Sprintf("the flag was edited since the change was scheduled (the change was based on version %d)", c.Expected)
		if edits := DescribeEdits(hist, c.Expected, maxEditsShown); edits != "" {
			reason += ": " + edits
		}
		return e.fail(ctx, c, reason, true, log)
	}
	if waits(err) {
		return e.retry(ctx, c, err, log)
	}
	// Refused for good (another 409 such as a running experiment's rollout, 412, 422, 403 —
	// the token lacks the right —, 404): the service's message says why and what to do.
	return e.fail(ctx, c, "the flag service refused the change: "+strings.TrimPrefix(errMessage(err), "flag service: "), false, log)
}

// Backoff of a step the flag service could not take: RetryBase doubling per attempt, at most
// RetryMax.
const (
	RetryBase = 5 * time.Second
	RetryMax  = 5 * time.Minute
)

// waits reports whether a step the flag service did not take should wait and be tried again:
// the service is down, overloaded or rate limiting, or the jobs service has no token or its
// token was rejected (401: revoked or expired). A token is fixed by an operator, and the
// change is still wanted; tooLate still ends the step after MaxDelay.
func waits(err error) bool {
	return flagsvc.Retryable(err) || errors.Is(err, flagsvc.ErrNoToken) || flagsvc.TokenRejected(err)
}

func retryAfter(attempts int) time.Duration {
	d := RetryBase
	for i := 1; i < attempts && d < RetryMax; i++ {
		d *= 2
	}
	return min(d, RetryMax)
}

// retry returns the step to pending, to be claimed again after a backoff — at least the
// Retry-After the flag service gave (a 429), at most RetryMax. A step still not applied
// MaxDelay after its time fails at its next claim (tooLate).
func (e *Executor) retry(ctx context.Context, c Claim, err error, log *slog.Logger) error {
	e.applied.WithLabelValues("retried").Inc()
	wait := min(max(retryAfter(c.Step.Attempts), flagsvc.RetryAfter(err)), RetryMax)
	if flagsvc.TokenRejected(err) {
		// Nothing is applied until an operator sets a valid token: say so at every attempt.
		log.Error("the flag service rejected the jobs service's token (revoked or expired); scheduled changes wait for a valid one (-flagsvc-token or -flagsvc-token-file)",
			"err", err, "retry_in", wait)
	} else {
		log.Warn("scheduled step not applied yet; will retry", "err", err, "in", wait)
	}
	return e.Store.RetryStep(ctx, c.Change.ID, c.Step.Position, err.Error(), e.now().Add(wait))
}

// tooLate ends a step claimed more than MaxDelay after its time — the jobs service was not
// running, or the flag service could not take it — unless an earlier attempt applied it.
func (e *Executor) tooLate(ctx context.Context, c Claim, late time.Duration, log *slog.Logger) error {
	ch, st := c.Change, c.Step
	if st.Attempts > 1 {
		// An earlier attempt may have made the write (an answer lost, an executor that died).
		hist, err := e.history(ctx, ch, c.Expected)
		v, ok := ownWrite(hist, ch, st, c.Expected)
		if ok {
			e.applied.WithLabelValues("recovered").Inc()
			log.Info("scheduled step had been applied by an earlier attempt", "version", v)
			return e.Store.CompleteStep(ctx, ch.ID, st.Position, v)
		}
		if flagsvc.Retryable(err) {
			return e.retry(ctx, c, fmt.Errorf("reading the flag's history: %w", err), log)
		}
	}
	reason := fmt.Sprintf("it was due at %s and is %s late, more than the %s a step may run late (-scheduler-max-delay)",
		st.ExecuteAt.UTC().Format("2006-01-02 15:04 UTC"), late.Round(time.Second), e.maxDelay())
	if st.Error != "" {
		reason = fmt.Sprintf("the flag service was unavailable for %s after the step's time (%s)", late.Round(time.Second), st.Error)
	}
	return e.fail(ctx, c, reason+"; schedule it again if it is still wanted", false, log)
}

func (e *Executor) maxDelay() time.Duration {
	if e.MaxDelay <= 0 {
		return time.Hour
	}
	return e.MaxDelay
}

// conflictField is the field a conflict from the flag service names: "version" for a write
// based on a stale version; another field (a running experiment's rollout) is a refusal.
func conflictField(err error) string {
	var ee *errs.Error
	if errors.As(err, &ee) {
		return ee.Field
	}
	return ""
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

// history reads the configuration's latest versions, newest first, and, when more than those
// came after expected, the first ones after expected as well (appended: the list stays newest
// first); an error means the latest could not be read.
func (e *Executor) history(ctx context.Context, ch Change, expected int64) ([]flagsvc.ConfigVersion, error) {
	hist, err := e.Flags.History(ctx, ch.Project, ch.Flag, ch.Environment, 0, historyLimit)
	if err != nil {
		e.Log.Warn("cannot read the flag's history", "change", ch.ID, "err", err)
		return hist, err
	}
	// More edits than were read: the newest historyLimit begin after the edit that made the
	// step stale, which its failure names first. Read the first edits after expected too.
	oldest := expected
	for i, v := range hist {
		if i == 0 || v.Version < oldest {
			oldest = v.Version
		}
	}
	if len(hist) == historyLimit && oldest > expected+1 {
		first, err := e.Flags.History(ctx, ch.Project, ch.Flag, ch.Environment, expected+maxEditsShown+1, maxEditsShown)
		if err != nil {
			// The failure then names the oldest edits read, and counts the rest.
			e.Log.Warn("cannot read the flag's first edits after a scheduled step's version", "change", ch.ID, "err", err)
			return hist, nil
		}
		for _, v := range first {
			if v.Version < oldest {
				hist = append(hist, v)
			}
		}
	}
	return hist, nil
}

// historyLimit is how many versions are read after a conflict: enough to find an earlier
// attempt's write and to name the edits an on-call engineer needs to see.
const historyLimit = 20

// ownWrite looks for this step's write in the configuration's history (by the marker its
// comment starts with), newer than the version it was based on.
func ownWrite(hist []flagsvc.ConfigVersion, ch Change, st Step, expected int64) (int64, bool) {
	marker := Marker(ch.ID, st.Position, len(ch.Steps)) + " "
	for _, v := range hist {
		if v.Version > expected && strings.HasPrefix(v.Comment, marker) {
			return v.Version, true
		}
	}
	return 0, false
}

// maxEditsShown is how many of the edits since a step's version its failure names; the
// rest are counted ("and 3 more").
const maxEditsShown = 3

// maxEditComment bounds each edit's comment in a failure (comments are free text).
const maxEditComment = 120

// DescribeEdits names the versions after expected in hist (newest first, as the flag service
// returns it), oldest first — the first is the edit that made the step stale —: version, what
// kind of change, who made it, when and its comment. At most limit are named, then "and K
// more" (counted from the newest version, so versions beyond the history read count too).
// Empty when hist holds none.
func DescribeEdits(hist []flagsvc.ConfigVersion, expected int64, limit int) string {
	var after []flagsvc.ConfigVersion
	newest := expected
	for _, v := range hist {
		if v.Version > expected {
			after = append(after, v)
			newest = max(newest, v.Version)
		}
	}
	if len(after) == 0 {
		return ""
	}
	slices.SortFunc(after, func(a, b flagsvc.ConfigVersion) int { return cmp.Compare(a.Version, b.Version) })
	var parts []string
	for _, v := range after[:min(len(after), limit)] {
		s := fmt.Sprintf("version %d, %s by %s at %s", v.Version, changeLabel(v), editorLabel(v.Actor),
			v.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		if c := strings.TrimSpace(v.Comment); c != "" {
			s += fmt.Sprintf(" (%q)", alert.Truncate(c, maxEditComment))
		}
		parts = append(parts, s)
	}
	out := strings.Join(parts, "; ")
	if more := newest - expected - int64(min(len(after), limit)); more > 0 {
		out += fmt.Sprintf("; and %d more", more)
	}
	return out
}

// changeLabel says what kind of change a version was, from the flag service's change kinds.
func changeLabel(v flagsvc.ConfigVersion) string {
	switch v.Change {
	case "update":
		return "an edit"
	case "toggle":
		return "a toggle"
	case "kill":
		return "the kill switch"
	case "rollback":
		return "a rollback to an earlier version"
	case "auto_rollback":
		return "a guardrail's automatic rollback"
	case "scheduled":
		if m := scheduledMarker.FindString(v.Comment); m != "" {
			return "another scheduled change (" + strings.TrimPrefix(m, "Scheduled change ") + ")"
		}
		return "another scheduled change"
	case "experiment":
		// The flag service's comment is "experiment <key> started" or "… concluded: …".
		switch {
		case strings.HasSuffix(v.Comment, " started"):
			return "an experiment start"
		case strings.Contains(v.Comment, " concluded"):
			return "an experiment conclusion"
		}
		return "an experiment"
	case "":
		return "a change"
	}
	return "a change (" + v.Change + ")"
}

var scheduledMarker = regexp.MustCompile(`^Scheduled change #\d+ step \d+/\d+`)

// editorLabel names who made a version: a user by email, a token by name.
func editorLabel(a flagsvc.Actor) string {
	name := a.Name
	if name == "" {
		name = a.ID
	}
	switch {
	case name == "":
		return "an unknown actor"
	case a.Type == "user":
		return "user " + name
	case a.Type == "token":
		return "token " + name
	case a.Type != "":
		return a.Type + " " + name
	}
	return name
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
