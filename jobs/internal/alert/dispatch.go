package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Delivery is an alert claimed from the outbox for sending.
type Delivery struct {
	ID       int64
	Alert    Alert
	Attempts int
	// Recovering is true when an earlier claim of this alert expired without an outcome: that
	// sender may have posted the message before it died, so the dispatcher looks for it first
	// (as it does after any earlier attempt: a failed post may have been posted).
	Recovering bool
	// ClaimedAt is when the alert was first claimed (where to start looking when recovering).
	FirstClaimedAt time.Time
}

// Store is the outbox.
type Store interface {
	// Claim leases the oldest due alert to owner for lease; ok is false when none is due.
	Claim(ctx context.Context, owner string, lease time.Duration) (d Delivery, ok bool, err error)
	// Sent records the delivery (ref is the message's id, the Slack ts).
	Sent(ctx context.Context, id int64, ref string) error
	// Retry returns the alert to the queue, due again at next.
	Retry(ctx context.Context, id int64, next time.Time, reason string) error
	// Fail gives up on the alert; status is "failed" or "skipped".
	Fail(ctx context.Context, id int64, status, reason string) error
}

// Sender delivers alerts (implemented by the slack package).
type Sender interface {
	// Send posts the alert to its channel and returns the message's reference.
	Send(ctx context.Context, a Alert) (ref string, err error)
	// Find looks for the alert in its channel among messages posted since since (it carries
	// its key as message metadata); found is false when it is not there.
	Find(ctx context.Context, a Alert, since time.Time) (ref string, found bool, err error)
}

// ErrPermanent marks a send error that retrying cannot fix (bad channel, bad token). Senders
// wrap such errors with it.
var ErrPermanent = errors.New("alert: permanent delivery failure")

// ErrNotConfigured is returned by a Sender that has no credentials: alerts are skipped (and
// logged) instead of queued forever.
var ErrNotConfigured = errors.New("alert: no sender configured")

// Dispatcher drains the outbox: any number of replicas may run one, because each alert is
// leased to one of them at a time.
type Dispatcher struct {
	Store  Store
	Sender Sender
	Log    *slog.Logger
	// Owner names this replica in claims.
	Owner string
	// Poll is how often the outbox is checked when idle (default 1 s).
	Poll time.Duration
	// Lease bounds one delivery attempt (default 2 min): longer than the sender's own retries.
	Lease time.Duration
	// MaxAttempts before an alert is given up (default 12, about 2 hours with the backoff).
	MaxAttempts int
	Now         func() time.Time

	wake    chan struct{}
	metrics *dispatchMetrics
}

type dispatchMetrics struct {
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

// NewDispatcher returns a dispatcher registering its metrics on reg.
func NewDispatcher(store Store, sender Sender, log *slog.Logger, owner string, reg prometheus.Registerer) *Dispatcher {
	m := &dispatchMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_alerts_delivered_total",
			Help: "Alerts delivered, by kind and outcome (sent, recovered, skipped, failed)."}, []string{"kind", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_alert_send_errors_total",
			Help: "Failed alert delivery attempts, by kind."}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.failures)
	}
	return &Dispatcher{Store: store, Sender: sender, Log: log, Owner: owner, wake: make(chan struct{}, 1), metrics: m}
}

// Name implements lifecycle.Component.
func (d *Dispatcher) Name() string { return "alert dispatcher" }

// Wake makes the dispatcher look at the outbox now (after an enqueue in this process).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Run delivers due alerts until ctx is cancelled.
func (d *Dispatcher) Run(ctx context.Context) error {
	poll := d.Poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for {
			more, err := d.DeliverOne(ctx)
			if err != nil && ctx.Err() == nil {
				d.Log.Warn("alert outbox", "err", err)
			}
			if !more || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
		}
	}
}

// DeliverOne claims and delivers one due alert; more reports whether one was claimed.
func (d *Dispatcher) DeliverOne(ctx context.Context) (more bool, err error) {
	lease := d.Lease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	del, ok, err := d.Store.Claim(ctx, d.Owner, lease)
	if err != nil || !ok {
		return false, err
	}
	a := del.Alert
	log := d.Log.With("alert", a.Key, "kind", a.Kind, "channel", a.Channel, "attempt", del.Attempts)
	// Bound the attempt by the lease, so no other replica can claim it while we still work.
	sctx, cancel := context.WithTimeout(ctx, lease-lease/8)
	defer cancel()
	// The outcome is recorded even when shutdown cancels ctx during the send: a posted message
	// left "sending" would be re-checked only after its lease, and shown unsent until then.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer rcancel()
	// An earlier attempt may have posted the message: a sender that died before recording it,
	// or a post Slack answered with a 5xx or never answered after posting it.
	if del.Recovering || del.Attempts > 1 {
		ref, found, ferr := d.Sender.Find(sctx, a, del.FirstClaimedAt.Add(-time.Minute))
		switch {
		case ferr == nil && found:
			log.Info("alert was already posted by an earlier attempt", "ref", ref)
			d.metrics.delivered.WithLabelValues(string(a.Kind), "recovered").Inc()
			return true, d.Store.Sent(rctx, del.ID, ref)
		case ferr != nil:
			// Without history access we cannot tell; posting again risks a duplicate, never a loss.
			log.Warn("cannot check whether an interrupted alert was posted; sending it again", "err", ferr)
		}
	}
	ref, serr := d.Sender.Send(sctx, a)
	if serr == nil {
		log.Info("alert sent", "ref", ref)
		d.metrics.delivered.WithLabelValues(string(a.Kind), "sent").Inc()
		return true, d.Store.Sent(rctx, del.ID, ref)
	}
	d.metrics.failures.WithLabelValues(string(a.Kind)).Inc()
	max := d.MaxAttempts
	if max <= 0 {
		max = 12
	}
	switch {
	case errors.Is(serr, ErrNotConfigured):
		log.Warn("alert not delivered: Slack is not configured", "text", Summary(a))
		d.metrics.delivered.WithLabelValues(string(a.Kind), "skipped").Inc()
		return true, d.Store.Fail(rctx, del.ID, "skipped", serr.Error())
	case errors.Is(serr, ErrPermanent) || del.Attempts >= max:
		log.Error("alert delivery failed for good", "err", serr, "text", Summary(a))
		d.metrics.delivered.WithLabelValues(string(a.Kind), "failed").Inc()
		return true, d.Store.Fail(rctx, del.ID, "failed", serr.Error())
	}
	next := d.now().Add(backoff(del.Attempts))
	log.Warn("alert delivery failed; will retry", "err", serr, "next", next)
	return true, d.Store.Retry(rctx, del.ID, next, serr.Error())
}

// recordTimeout bounds recording a delivery's outcome (within the services' 15 s shutdown).
const recordTimeout = 10 * time.Second

// backoff is the wait after the n-th failed attempt: 5 s doubling to 20 min.
func backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 20*time.Minute; i++ {
		d *= 2
	}
	return min(d, 20*time.Minute)
}

// Summary is a one-line plain-text rendering of an alert, for logs.
func Summary(a Alert) string {
	switch {
	case a.Breach != nil:
		b := a.Breach
		return fmt.Sprintf("guardrail %s breached on %s/%s: %s effect %+.2f%% [%+.2f%%, %+.2f%%] p=%.3g, action %s",
			b.GuardrailID, b.Environment, b.Flag, b.Metric, 100*b.Effect, 100*b.Interval[0], 100*b.Interval[1], b.PValue, b.ActionTaken)
	case a.SRM != nil:
		return fmt.Sprintf("sample ratio mismatch in experiment %s (%s): p=%.3g", a.SRM.Experiment, a.SRM.Environment, a.SRM.PValue)
	case a.ScheduledFailed != nil:
		s := a.ScheduledFailed
		return fmt.Sprintf("scheduled change %d step %d/%d on %s/%s failed: %s", s.ChangeID, s.Step, s.Steps, s.Environment, s.Flag, s.Reason)
	case a.Digest != nil:
		return fmt.Sprintf("stale-flag digest for %s: %d flags", a.Project, len(a.Digest.Flags))
	}
	return string(a.Kind)
}
