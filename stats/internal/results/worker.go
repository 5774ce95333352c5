package results

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/stats/engine"
	"github.com/switchyard-io/switchyard/stats/internal/flagsvc"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// Config configures the worker.
type Config struct {
	// Interval is how often every running experiment is refreshed.
	Interval time.Duration
	// Settle is how long after midnight (UTC) a day is considered complete and folded: the
	// margin for the events received before midnight to reach ClickHouse (Kafka, the writer's
	// batches). A fold read at t holds the events received before t - Settle.
	Settle time.Duration
	// LateWindow is how long after its end a day may still receive events (ingest's
	// -clock-skew-past, 168 h): until then, a folded day that received events since its fold
	// is folded again (late events). Later arrivals are not counted.
	LateWindow time.Duration
	// Concurrency is how many experiments are refreshed at once (sweeps and on-demand
	// refreshes together): one slow experiment holds one slot, not the sweep.
	Concurrency int
	// RefreshTimeout bounds one experiment's refresh; one that takes longer is cancelled
	// (its ClickHouse queries too) and recorded as a failure.
	RefreshTimeout time.Duration
	// Retention thins old snapshots every hour (Store.Thin); a zero KeepAll keeps them all.
	Retention Retention
	// RollupRetention is how long an experiment's ClickHouse rollups are kept once its final
	// results are settled (LateWindow after its stop, when the worker stops computing them);
	// then they are dropped and its folds forgotten (maintainRollups); so are those of an
	// experiment gone from the flag service (its project deleted) for as long. Zero keeps them forever.
	RollupRetention time.Duration
}

// maxBackoff caps how long a sweep leaves an experiment whose refreshes keep failing.
const maxBackoff = time.Hour

// Worker refreshes experiment results.
type Worker struct {
	cfg     Config
	store   *Store
	ch      driver.Conn
	flags   *flagsvc.Client
	log     *slog.Logger
	now     func() time.Time
	trigger chan ref
	stopped chan struct{} // closed when Run has returned
	slots   chan struct{} // one per refresh running
	// waiters: one per on-demand refresh not running yet that may hold a Postgres connection —
	// waiting for its experiment's lock, or holding it while it waits for a slot. It takes a
	// slot only once it holds the experiment, so one waiting for another refresh of it (up to
	// the request's 2 minutes) keeps no other experiment from being refreshed; and at most
	// Concurrency of them hold connections so.
	waiters chan struct{}

	defs *metricsql.Definitions

	refreshes *prometheus.CounterVec
	duration  prometheus.Histogram
	// toResults: from a refresh's start to its stored snapshot (duration goes on to the totals).
	toResults prometheus.Histogram
	refolds   prometheus.Counter
	// unitsBases counts the units bases merged from every state, unitsDelta the contexts a
	// refresh advanced its base by.
	unitsBases prometheus.Counter
	unitsDelta prometheus.Histogram
	// totalsUpdates counts the totals written, from nothing or from the previous ones.
	totalsUpdates *prometheus.CounterVec

	skippedSweeps prometheus.Counter

	// waiting counts the on-demand refreshes waiting for the experiment's lock, queued those
	// waiting for a place among the waiters.
	waiting, queued prometheus.Gauge
	// beforeTotals, when set (tests), runs in a refresh between storing its snapshot and
	// bringing the totals up to date.
	beforeTotals func()
	// afterForget, when set (tests), runs in dropExpiredRollups between forgetting an
	// experiment's folds and dropping its partitions; an error stops there, as a crash would.
	afterForget func() error
}

type ref struct {
	ctx          context.Context // the caller's: done when it no longer waits
	project, key string
	at           time.Time // when it was asked for (the worker's clock)
	done         chan error
}

// NewWorker returns a worker; reg may be nil.
func NewWorker(cfg Config, store *Store, ch driver.Conn, flags *flagsvc.Client, log *slog.Logger, reg prometheus.Registerer) *Worker {
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Settle == 0 {
		cfg.Settle = time.Hour
	}
	if cfg.LateWindow == 0 {
		cfg.LateWindow = 168 * time.Hour
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = 15 * time.Minute
	}
	w := &Worker{cfg: cfg, store: store, ch: ch, flags: flags, log: log, now: time.Now, trigger: make(chan ref, 64), stopped: make(chan struct{}),
		slots: make(chan struct{}, cfg.Concurrency), waiters: make(chan struct{}, cfg.Concurrency),
		defs: &metricsql.Definitions{Load: func(ctx context.Context, project, key string, version int64) (metricsql.Definition, error) {
			return flags.MetricVersion(ctx, project, key, version)
		}},
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stats_results_refreshes_total",
			Help: "Experiment result refreshes, by outcome: ok, error, busy (another refresh held the experiment, or an on-demand one's caller stopped waiting), final, joined (an on-demand refresh answered by the snapshot of the refresh it waited for)."}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stats_results_refresh_seconds",
			Help: "Time to refresh one experiment's results, including bringing its totals up to date.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		toResults: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stats_results_refresh_to_snapshot_seconds",
			Help:    "Time from a refresh's start to its stored snapshot (an on-demand refresh answers then; the totals are written after).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		refolds: prometheus.NewCounter(prometheus.CounterOpts{Name: "stats_results_refolds_total",
			Help: "Folded days of a metric part folded again because events for them arrived after their fold."}),
		skippedSweeps: prometheus.NewCounter(prometheus.CounterOpts{Name: "stats_results_sweeps_skipped_total",
			Help: "Sweeps not started because the previous one was still running."}),
		unitsBases: prometheus.NewCounter(prometheus.CounterOpts{Name: "stats_results_units_bases_total",
			Help: "Units bases merged from every state of an experiment's units (a first refresh, a daily rebuild, a base gone)."}),
		unitsDelta: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stats_results_units_delta_contexts",
			Help: "Contexts with exposures received since the units base's watermark, merged into it by a refresh.", Buckets: prometheus.ExponentialBuckets(1, 4, 12)}),
		totalsUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stats_results_totals_updates_total",
			Help: "Totals of an experiment's folds written, from the previous totals or from nothing (a first refresh that folds, totals gone or left idle)."}, []string{"from"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stats_results_refreshes_waiting",
			Help: "On-demand refreshes waiting for another refresh of their experiment (a sweep, another replica's, or one writing its totals) to end."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stats_results_refreshes_queued",
			Help: "On-demand refreshes queued for a place among those that wait for their experiment or a slot (-results-concurrency at once)."}),
	}
	if reg != nil {
		reg.MustRegister(w.refreshes, w.duration, w.toResults, w.refolds, w.skippedSweeps, w.unitsBases, w.unitsDelta, w.totalsUpdates, w.waiting, w.queued)
	}
	return w
}

// Name implements lifecycle.Component.
func (w *Worker) Name() string { return "results worker" }

// Run refreshes every running experiment every interval, and single experiments on demand.
// A sweep still running when the next is due is not doubled: the next starts at the first
// tick after it ends. On-demand refreshes do not wait for a sweep, only for a free slot.
func (w *Worker) Run(ctx context.Context) error {
	defer close(w.stopped) // last: after every refresh it started has ended
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	thin := time.NewTicker(time.Hour)
	defer thin.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sweeping := make(chan struct{}, 1)
	startSweep := func() {
		select {
		case sweeping <- struct{}{}:
		default:
			w.log.Warn("results sweep still running at the next interval: skipped (raise -results-concurrency or -results-interval)")
			w.skippedSweeps.Inc()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sweeping }()
			w.sweep(ctx)
		}()
	}
	// Thinning (and the rollups' maintenance after it) runs beside the loop too: its first run
	// over a big table can take minutes, and on-demand refreshes must not queue behind it.
	thinning := make(chan struct{}, 1)
	startThin := func() {
		select {
		case thinning <- struct{}{}:
		default:
			return // the previous one is still running
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-thinning }()
			w.thin(ctx)
			w.maintainRollups(ctx)
		}()
	}
	startSweep()
	startThin()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			startSweep()
		case <-thin.C:
			startThin()
		case r := <-w.trigger:
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.refreshOnDemand(ctx, r)
			}()
		}
	}
}

// refreshOnDemand refreshes r's experiment and answers r as soon as the refresh has stored its
// snapshot: the caller (the results API) reads it then. The refresh goes on under its lock, and
// in its slot, to bring the experiment's totals up to date (after a day was folded, seconds at
// scale), which no reader waits for. When another refresh of the experiment holds its lock — a
// sweep, another replica's, or one writing its totals — it waits for it while its caller does,
// then recomputes, unless the refresh it waited for read the data up to the ask. It takes a
// slot once it holds the experiment's lock, and only to recompute: until then it holds one of
// the waiters' places.
func (w *Worker) refreshOnDemand(ctx context.Context, r ref) {
	var once sync.Once
	answer := func(err error) { once.Do(func() { r.done <- err }) }
	// wait ends when the caller gives up or the worker stops: nothing waits for a place, a lock
	// or a slot any longer then (a refresh costs ClickHouse minutes, and its retries would pile
	// them up).
	wait, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(r.ctx, stop)()
	abandoned := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrBusy // the caller stopped waiting
	}
	w.queued.Inc()
	select {
	case w.waiters <- struct{}{}:
		w.queued.Dec()
	case <-wait.Done():
		w.queued.Dec()
		if err := ctx.Err(); err != nil {
			answer(err) // the worker stops
		} else {
			answer(r.ctx.Err())
		}
		return
	}
	var left sync.Once
	leave := func() { left.Do(func() { <-w.waiters }) }
	defer leave()
	if err := r.ctx.Err(); err != nil {
		answer(err)
		return
	}
	x, err := w.flags.ServiceExperiment(ctx, r.project, r.key)
	if err != nil {
		answer(err)
		return
	}
	slot := func() (release func(), err error) {
		select {
		case w.slots <- struct{}{}:
			leave()
			return func() { <-w.slots }, nil
		case <-wait.Done():
			return nil, abandoned()
		}
	}
	answer(w.refreshAnswering(ctx, x, &onDemand{wait: wait, at: r.at, stored: func() { answer(nil) }, slot: slot}))
}

// onDemand is what a refresh asked for through the API adds to a sweep's.
type onDemand struct {
	// wait ends when neither the caller nor the worker waits any longer for the experiment's
	// lock.
	wait context.Context
	// at is when it was asked for: a snapshot of data up to then answers it.
	at time.Time
	// stored answers the caller, once the snapshot is stored.
	stored func()
	// slot waits for a refresh slot (once the refresh holds the experiment's lock), and returns
	// its release.
	slot func() (release func(), err error)
}

// thin applies the snapshot retention (Config.Retention).
func (w *Worker) thin(ctx context.Context) {
	if w.cfg.Retention.KeepAll <= 0 {
		return
	}
	n, err := w.store.Thin(ctx, w.cfg.Retention, w.now())
	if n > 0 {
		w.log.Info("thinned old result snapshots", "deleted", n)
	}
	if err != nil && ctx.Err() == nil { // stopped by the shutdown: the next run goes on
		w.log.Warn("cannot thin old result snapshots", "err", err)
	}
}

// staleCompactions: a compaction's staging table older than this is a crashed one's leftover.
const staleCompactions = 6 * time.Hour

// maintainRollups deletes ClickHouse rollups nobody can read any more (hourly, beside the
// loop; one replica at a time). An experiment stopped LateWindow + RollupRetention ago is marked
// final (a refresh is refused from then on: ErrFinal), has its recorded folds forgotten, then its
// rollup partitions dropped — in that order, so no refresh ever reads a recorded fold whose rows
// are gone nor folds again from raw events, even when a run stops between the steps (the next
// run finishes the drop). A closed month of an experiment (its last day LateWindow + Settle
// past its end: no event can be added to it, and no day of it is folded again on schedule) is
// rewritten without the rows of replaced folds (late events), once, and again only if a fold
// of it is recorded later. An experiment the flag service no longer has (its project deleted)
// has its rollups dropped the same way once it has been gone for RollupRetention (maintained).
// Each experiment is handled under its refresh lock, skipped while it is being refreshed; an
// interrupted run is finished by the next one.
func (w *Worker) maintainRollups(ctx context.Context) {
	release, ok, err := w.store.TryLock(ctx, "results:rollups")
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			w.log.Warn("cannot maintain the rollups", "err", err)
		}
		return
	}
	defer release()
	byExperiment, err := metricsql.RollupsByExperiment(ctx, w.ch)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("cannot maintain the rollups", "err", err)
		}
		return
	}
	if !byExperiment {
		w.log.Warn("rollups are not deleted: experiment_metric_rollups is not partitioned by experiment yet (run ingest's ClickHouse migrations)")
		return
	}
	if n, err := metricsql.DropStaleCompactions(ctx, w.ch, staleCompactions); err != nil {
		w.log.Warn("cannot drop the staging tables of interrupted compactions", "err", err)
	} else if n > 0 {
		w.log.Info("dropped the staging tables of interrupted rollup compactions", "tables", n)
	}
	all, gone, err := w.maintained(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("rollups not maintained: cannot list experiments", "err", err)
		}
		return
	}
	if w.cfg.RollupRetention > 0 {
		w.dropExpiredRollups(ctx, all, gone)
	}
	w.compactRollups(ctx, all)
}

// maintained returns the experiments (by id) whose rollups the maintenance may have work on,
// bounded by that work rather than by every experiment ever concluded: with a rollup
// retention, the experiments with recorded folds, an unfinished drop or a record of their own
// (results_folds, results_rollups_dropped, results_experiments: a refresh records the
// experiment before it folds) — their rollups may still exist, and an expired one leaves the
// set once dropped; without one, the experiments with a closed month to compact. The running ones and
// those stopped within LateWindow + RollupRetention (not expired yet) come from the flag
// service's lists; each other one, expired or gone, is read by itself (its project and key as
// results_experiments or its latest snapshot name them).
//
// One the flag service no longer has (404: its project deleted; or its key now names another
// experiment) is gone: marked so the first time (results_experiments.gone_since, logged once),
// the mark cleared if the flag service has it again. gone holds those gone for RollupRetention
// (with a retention, and a known environment): dropExpiredRollups drops their rollups as it
// does an expired experiment's, and they leave the set.
func (w *Worker) maintained(ctx context.Context) (all, gone map[string]flagsvc.Experiment, err error) {
	var ids []string
	if w.cfg.RollupRetention > 0 {
		if ids, err = w.store.ExperimentsWithRollups(ctx); err != nil {
			return nil, nil, err
		}
	} else {
		closed := w.now().UTC().Add(-w.cfg.LateWindow - w.cfg.Settle)
		months, err := w.store.MonthsToCompact(ctx, time.Date(closed.Year(), closed.Month(), 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			return nil, nil, err
		}
		seen := map[string]bool{}
		for _, m := range months {
			if !seen[m.ExperimentID] {
				seen[m.ExperimentID] = true
				ids = append(ids, m.ExperimentID)
			}
		}
	}
	all, gone = map[string]flagsvc.Experiment{}, map[string]flagsvc.Experiment{}
	if len(ids) == 0 {
		return all, gone, nil
	}
	xs, err := w.flags.RunningExperiments(ctx)
	if err != nil {
		return nil, nil, err
	}
	since := w.now().Add(-w.cfg.LateWindow - w.cfg.RollupRetention)
	for _, status := range []string{"stopped", "concluded"} {
		stopped, err := w.flags.ExperimentsStoppedAfter(ctx, status, since)
		if err != nil {
			return nil, nil, err
		}
		xs = append(xs, stopped...)
	}
	for _, x := range xs {
		all[x.ID] = x
	}
	records, err := w.store.ExperimentRecords(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	var missing []string
	for _, id := range ids {
		if x, ok := all[id]; ok {
			w.present(ctx, x, records)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return all, gone, nil
	}
	refs, err := w.store.ExperimentRefs(ctx, missing)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range missing {
		if ctx.Err() != nil {
			break
		}
		rec, recorded := records[id]
		r, ok := refs[id]
		if recorded {
			r, ok = ExperimentRef{Project: rec.Project, Key: rec.Key}, true
		}
		if !ok {
			continue // no snapshot yet: nothing to name it by (its next refresh saves one)
		}
		x, err := w.flags.ServiceExperiment(ctx, r.Project, r.Key)
		switch {
		case err == nil && x.ID == id:
			all[id] = x
			w.present(ctx, x, records)
			continue
		case err == nil && rec.EnvironmentID != "" && x.EnvironmentID == rec.EnvironmentID:
			// Another experiment under the same key in the same environment: their rollups share
			// partitions, which are not dropped for this one (never seen: a deleted project's
			// environments go with it).
			continue
		case err != nil && !errors.Is(err, flagsvc.ErrNotFound):
			if ctx.Err() == nil {
				w.log.Warn("rollups of an experiment not maintained: cannot read it", "project", r.Project, "experiment", r.Key, "err", err)
			}
			continue
		}
		// Gone: not found (its project deleted), or its key names another experiment now.
		if rec.EnvironmentID == "" {
			rec.EnvironmentID = w.rollupEnvironment(ctx, id, r)
		}
		if rec.GoneSince.IsZero() {
			if err := w.store.MarkGone(ctx, id, r.Project, r.Key, w.now().UTC()); err != nil {
				if ctx.Err() == nil {
					w.log.Warn("cannot mark an experiment gone from the flag service", "project", r.Project, "experiment", r.Key, "err", err)
				}
				continue
			}
			fate := "its rollups are dropped once it has been gone for the rollup retention"
			switch {
			case w.cfg.RollupRetention == 0:
				fate = "its rollups are kept (rollup retention 0)"
			case rec.EnvironmentID == "":
				fate = "its rollups are kept (its environment was never recorded, and no rollup row names it)"
			}
			w.log.Info("experiment gone from the flag service (its project deleted, or its key reused): "+fate,
				"project", r.Project, "experiment", r.Key, "experiment_id", id, "retention", w.cfg.RollupRetention)
			continue
		}
		if w.cfg.RollupRetention > 0 && rec.EnvironmentID != "" && !w.now().Before(rec.GoneSince.Add(w.cfg.RollupRetention)) {
			gone[id] = flagsvc.Experiment{ID: id, Project: r.Project, Key: r.Key, EnvironmentID: rec.EnvironmentID}
		}
	}
	return all, gone, nil
}

// rollupEnvironment finds, and records, the environment of a gone experiment whose environment
// was never recorded (it folded before results_experiments existed and was gone before the
// maintenance saw it listed): the rollup rows of one of its recorded folds name it. "" when
// none does (or on an error, logged; the next run tries again).
func (w *Worker) rollupEnvironment(ctx context.Context, id string, r ExperimentRef) string {
	fold, ok, err := w.store.SomeFold(ctx, id)
	if err == nil && ok {
		var env string
		if env, ok, err = metricsql.RollupEnvironment(ctx, w.ch, r.Key, fold); err == nil && ok {
			if err = w.store.RememberExperiment(ctx, id, env, r.Project, r.Key); err == nil {
				return env
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		w.log.Warn("cannot find the environment of a gone experiment's rollups", "project", r.Project, "experiment", r.Key, "err", err)
	}
	return ""
}

// present updates the record of an experiment with rollups that the flag service has: its
// environment (unknown for one that folded before results_experiments existed), and its gone
// mark cleared if it had gone.
func (w *Worker) present(ctx context.Context, x flagsvc.Experiment, records map[string]ExperimentRecord) {
	rec, ok := records[x.ID]
	if !ok || rec.EnvironmentID != x.EnvironmentID || rec.Project != x.Project || rec.Key != x.Key {
		if err := w.store.RememberExperiment(ctx, x.ID, x.EnvironmentID, x.Project, x.Key); err != nil && ctx.Err() == nil {
			w.log.Warn("cannot record an experiment's environment", "experiment", x.Key, "err", err)
		}
	}
	if ok && !rec.GoneSince.IsZero() {
		if err := w.store.ClearGone(ctx, x.ID); err != nil {
			if ctx.Err() == nil {
				w.log.Warn("cannot clear an experiment's gone mark", "experiment", x.Key, "err", err)
			}
			return
		}
		w.log.Info("experiment back in the flag service: its rollups are kept", "project", x.Project, "experiment", x.Key,
			"gone_since", rec.GoneSince)
	}
}

// dropExpiredRollups drops the rollups of the experiments stopped LateWindow + RollupRetention
// ago (of all), and of those gone from the flag service for RollupRetention (gone).
func (w *Worker) dropExpiredRollups(ctx context.Context, all, gone map[string]flagsvc.Experiment) {
	var expired []flagsvc.Experiment
	for _, x := range all {
		if x.StoppedAt != nil && !w.now().Before(x.StoppedAt.Add(w.cfg.LateWindow+w.cfg.RollupRetention)) {
			expired = append(expired, x)
		}
	}
	for _, x := range gone {
		expired = append(expired, x)
	}
	if len(expired) == 0 {
		return
	}
	ids := make([]string, len(expired))
	for i, x := range expired {
		ids[i] = x.ID
	}
	dropped, err := w.store.RollupsDropped(ctx, ids)
	if err != nil {
		w.log.Warn("cannot read which experiments' rollups were dropped", "err", err)
		return
	}
	for _, x := range expired {
		if dropped[x.ID] || ctx.Err() != nil {
			continue
		}
		what := "a finished experiment"
		if _, ok := gone[x.ID]; ok {
			what = "an experiment gone from the flag service"
		}
		err := w.underLock(ctx, x, func() error {
			// Marked first: a refresh between the steps (or after a run interrupted between
			// them) would fold every day again from raw events that may be gone.
			if err := w.store.MarkRollupsDropping(ctx, x.ID); err != nil {
				return err
			}
			if err := w.store.ForgetFolds(ctx, x.ID); err != nil {
				return err
			}
			if w.afterForget != nil {
				if err := w.afterForget(); err != nil {
					return err
				}
			}
			months, err := metricsql.DropRollups(ctx, w.ch, x.EnvironmentID, x.Key)
			if err != nil {
				return err
			}
			if err := w.store.MarkRollupsDropped(ctx, x.ID); err != nil {
				return err
			}
			w.log.Info("dropped the rollups of "+what, "project", x.Project, "experiment", x.Key, "months", months)
			return nil
		})
		if err != nil && ctx.Err() == nil {
			w.log.Warn("cannot drop the rollups of "+what, "experiment", x.Key, "err", err)
		}
	}
}

// compactRollups rewrites the closed months of experiments' rollups without their replaced folds.
func (w *Worker) compactRollups(ctx context.Context, all map[string]flagsvc.Experiment) {
	closed := w.now().UTC().Add(-w.cfg.LateWindow - w.cfg.Settle)
	months, err := w.store.MonthsToCompact(ctx, time.Date(closed.Year(), closed.Month(), 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("cannot list the rollup months to compact", "err", err)
		}
		return
	}
	for _, m := range months {
		x, ok := all[m.ExperimentID]
		if !ok || ctx.Err() != nil {
			continue // not listed by the flag service (its project deleted): left as it is
		}
		err := w.underLock(ctx, x, func() error {
			keep, err := w.store.MonthFolds(ctx, x.ID, m.Month)
			if err != nil {
				return err
			}
			month := uint32(m.Month.Year()*100 + int(m.Month.Month()))
			before, after, err := metricsql.CompactRollups(ctx, w.ch, x.EnvironmentID, x.Key, month, keep)
			if err != nil {
				return err
			}
			if after < before {
				w.log.Info("deleted the rollups of replaced folds", "experiment", x.Key, "month", month, "rows", before-after, "kept", after)
				if err := w.forgetStaleTotals(ctx, x); err != nil {
					return err
				}
			}
			return w.store.MarkCompacted(ctx, x.ID, m.Month)
		})
		if err != nil && ctx.Err() == nil {
			w.log.Warn("cannot compact rollups", "experiment", x.Key, "month", m.Month.Format("2006-01"), "err", err)
		}
	}
}

// forgetStaleTotals forgets (and drops) the experiment's totals when they still add up a fold
// no longer recorded: bringing them up to date takes that fold's rows away, and a compaction may
// just have deleted them. The next refresh adds up every fold again then. Totals are brought up
// to date by the refresh that folds again, so this is for a refresh that failed in between.
func (w *Worker) forgetStaleTotals(ctx context.Context, x flagsvc.Experiment) error {
	t, ok, err := w.store.Totals(ctx, x.ID)
	if err != nil || !ok {
		return err
	}
	recorded := metricsql.Folds{}
	for _, k := range t.Parts {
		done, err := w.store.Folded(ctx, x.ID, k.Metric, k.Version, k.Part)
		if err != nil {
			return err
		}
		for _, f := range done {
			recorded[k] = append(recorded[k], f.ID)
		}
	}
	if !t.Replaced(recorded) {
		return nil
	}
	if forgot, err := w.store.Forget(ctx, KeptTotals, x.ID, t.ID); err != nil || !forgot {
		return err
	}
	return metricsql.DropTotals(ctx, w.ch, t.ID)
}

// lockExperiment takes the experiment's refresh lock (a Postgres advisory lock, so one replica
// at a time refreshes or maintains it) without waiting; ok is false when another holds it.
func (w *Worker) lockExperiment(ctx context.Context, x flagsvc.Experiment) (release func(), ok bool, err error) {
	return w.store.TryLock(ctx, "results:"+x.ID)
}

// awaitExperiment takes the experiment's refresh lock for an on-demand refresh: at once when it
// is free, else when its holder releases it, until ask.wait ends (ErrBusy then, unless the
// worker is stopping). waited says it was held.
func (w *Worker) awaitExperiment(ctx context.Context, x flagsvc.Experiment, ask *onDemand) (release func(), waited bool, err error) {
	release, ok, err := w.lockExperiment(ctx, x)
	if err != nil || ok {
		return release, false, err
	}
	w.waiting.Inc()
	defer w.waiting.Dec()
	release, err = w.store.Lock(ask.wait, "results:"+x.ID)
	if err != nil && ctx.Err() == nil && ask.wait.Err() != nil {
		err = ErrBusy // the caller stopped waiting
	}
	return release, true, err
}

// underLock runs fn holding the experiment's refresh lock; nothing when a refresh holds it
// (the next maintenance tries again).
func (w *Worker) underLock(ctx context.Context, x flagsvc.Experiment, fn func() error) error {
	release, ok, err := w.lockExperiment(ctx, x)
	if err != nil || !ok {
		return err
	}
	defer release()
	return fn()
}

// Refresh asks the worker to recompute an experiment now and waits until the refresh has stored
// its snapshot (not for the totals it then writes).
func (w *Worker) Refresh(ctx context.Context, project, key string) error {
	r := ref{ctx: ctx, project: project, key: key, at: w.now().UTC(), done: make(chan error, 1)}
	select {
	case w.trigger <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.stopped:
		return ErrStopped
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-w.stopped:
		// Run took the request and ended it, or returned before taking it.
		select {
		case err := <-r.done:
			return err
		default:
			return ErrStopped
		}
	}
}

// ErrStopped: the worker is shutting down (Run has returned); nothing more is refreshed.
var ErrStopped = errors.New("results: the results worker has stopped")

func (w *Worker) sweep(ctx context.Context) {
	w.dropIdleKept(ctx)
	xs, err := w.flags.RunningExperiments(ctx)
	if err != nil {
		w.log.Warn("cannot list running experiments", "err", err)
		return
	}
	due, err := w.dueNow(ctx, xs, false)
	if err != nil {
		w.log.Warn("cannot read the experiments' last refreshes", "err", err)
		return
	}
	w.refreshAll(ctx, due, "results refresh failed")
	w.finalize(ctx)
}

// dueAt is when a sweep refreshes an experiment next: an interval after its latest snapshot
// (on demand or by a sweep) — less a tenth, so sweeps that start a little early or compute in
// a different order do not skip it — and, after failed refreshes, an interval doubled at each
// failure in a row (at most maxBackoff) after the last failure.
func (w *Worker) dueAt(st RefreshState) time.Time {
	at := time.Time{}
	if !st.LastComputed.IsZero() {
		at = st.LastComputed.Add(w.cfg.Interval - w.cfg.Interval/10)
	}
	if st.Failures > 0 {
		// Compared before shifting: a shifted long interval would overflow.
		backoff := max(maxBackoff, w.cfg.Interval)
		if n := min(st.Failures-1, 16); w.cfg.Interval <= maxBackoff>>n {
			backoff = w.cfg.Interval << n
		}
		if f := st.FailedAt.Add(backoff - w.cfg.Interval/10); f.After(at) {
			at = f
		}
	}
	return at
}

// refreshAll refreshes experiments, Concurrency at a time, and returns when all are done.
func (w *Worker) refreshAll(ctx context.Context, xs []flagsvc.Experiment, failed string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, x := range xs {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-w.slots }()
			if err := w.refresh(ctx, x); err != nil && !errors.Is(err, ErrBusy) && ctx.Err() == nil {
				w.log.Warn(failed, "project", x.Project, "experiment", x.Key, "err", err)
			}
		}()
	}
}

// finalize computes the final results of experiments stopped (or concluded): a sweep refreshes
// only running experiments, so without it the results a stopped experiment keeps would miss
// the data of up to one interval before its stop. They are computed (up to the stop time) at
// every sweep until one has run Settle after the stop, so events of the last minutes before
// the stop that reach ClickHouse within the settle margin count. Experiments stopped more than
// LateWindow ago are left alone; one whose final refreshes keep failing backs off as a running
// one does (dueAt).
func (w *Worker) finalize(ctx context.Context) {
	for _, status := range []string{"stopped", "concluded"} {
		// Only the experiments stopped within the late window: the others are left alone anyway,
		// and every experiment ever concluded would make the answer grow without end.
		xs, err := w.flags.ExperimentsStoppedAfter(ctx, status, w.now().Add(-w.cfg.LateWindow))
		if err != nil {
			w.log.Warn("cannot list experiments", "status", status, "err", err)
			continue
		}
		var todo []flagsvc.Experiment
		for _, x := range xs {
			if ctx.Err() != nil {
				return
			}
			if x.StartedAt == nil || x.StoppedAt == nil || w.now().Sub(*x.StoppedAt) > w.cfg.LateWindow {
				continue
			}
			last, err := w.store.Snapshots(ctx, x.ID, 1)
			if err != nil || (len(last) > 0 && reachesStop(last[0], x) &&
				!last[0].ComputedAt.Before(x.StoppedAt.Add(w.cfg.Settle))) {
				continue
			}
			todo = append(todo, x)
		}
		w.refreshAll(ctx, w.notBackingOff(ctx, todo), "final results of a stopped experiment failed")
	}
}

// notBackingOff leaves out of xs the experiments whose refreshes keep failing and are not due
// a retry yet (dueAt's backoff); all of xs when their states cannot be read.
func (w *Worker) notBackingOff(ctx context.Context, xs []flagsvc.Experiment) []flagsvc.Experiment {
	if len(xs) == 0 {
		return nil
	}
	out, err := w.dueNow(ctx, xs, true)
	if err != nil {
		w.log.Warn("cannot read the experiments' last refreshes", "err", err)
		return xs
	}
	return out
}

// dueNow returns the experiments of xs due a refresh now (dueAt), reading their refresh states in
// one query; with failuresOnly, only a failing experiment's backoff counts, not its latest
// snapshot's age.
func (w *Worker) dueNow(ctx context.Context, xs []flagsvc.Experiment, failuresOnly bool) ([]flagsvc.Experiment, error) {
	ids := make([]string, len(xs))
	for i, x := range xs {
		ids[i] = x.ID
	}
	states, err := w.store.RefreshStates(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := w.now()
	var out []flagsvc.Experiment
	for _, x := range xs {
		st := states[x.ID]
		if failuresOnly {
			st.LastComputed = time.Time{}
		}
		if !now.Before(w.dueAt(st)) {
			out = append(out, x)
		}
	}
	return out, nil
}

// staleUnits: a units or totals partition older than this and not recorded is a crashed
// refresh's leftover (a refresh of 5M units takes about a minute) or a forgotten one.
const staleUnits = 6 * time.Hour

// idleUnits is how long a units base or totals no refresh read are kept (at least three
// intervals): an experiment stopped, or paused, or whose refreshes keep failing, then builds
// new ones.
func (w *Worker) idleUnits() time.Duration { return max(2*time.Hour, 3*w.cfg.Interval) }

// keptKind is a kind of partition experiments keep between refreshes: where it is recorded,
// and how its partitions are dropped.
type keptKind struct {
	kept  Kept
	name  string
	drop  func(context.Context, driver.Conn, int64) error
	stale func(context.Context, driver.Conn, time.Duration, map[int64]bool) (int, error)
}

var (
	keptUnits  = keptKind{KeptUnits, "units base", metricsql.DropUnits, metricsql.DropStaleUnits}
	keptTotals = keptKind{KeptTotals, "totals", metricsql.DropTotals, metricsql.DropStaleTotals}
	keptKinds  = []keptKind{keptUnits, keptTotals}
)

// replaceKept records partition id as the experiment's partition of kind k (record returns the
// one it replaced, 0: none) and drops the replaced one. When recording fails it drops id, unless
// id is the partition recorded before (was).
func (w *Worker) replaceKept(ctx context.Context, x flagsvc.Experiment, k keptKind, id, was int64, record func() (int64, error)) error {
	replaced, err := record()
	if err != nil {
		if id != was {
			_ = k.drop(context.WithoutCancel(ctx), w.ch, id)
		}
		return err
	}
	if replaced != 0 && replaced != id {
		if err := k.drop(ctx, w.ch, replaced); err != nil {
			w.log.Warn("cannot drop the replaced partition (the next sweep drops it)", "kind", k.name, "experiment", x.Key, "err", err)
		}
	}
	return nil
}

// dropIdleKept drops the units bases and totals no refresh read for idleUnits, each under its
// experiment's refresh lock (skipped while it is being refreshed), then the partitions of
// crashed refreshes and forgotten ones.
func (w *Worker) dropIdleKept(ctx context.Context) {
	for _, k := range keptKinds {
		keep, idle, err := w.store.KeptPartitions(ctx, k.kept, w.now().Add(-w.idleUnits()))
		if err != nil {
			w.log.Warn("cannot list the kept partitions", "kind", k.name, "err", err)
			continue
		}
		for _, b := range idle {
			err := w.underLock(ctx, flagsvc.Experiment{ID: b.ExperimentID}, func() error {
				forgot, err := w.store.Forget(ctx, k.kept, b.ExperimentID, b.ID)
				if err != nil || !forgot {
					return err
				}
				delete(keep, b.ID) // no longer recorded: dropped below if this drop fails
				return k.drop(ctx, w.ch, b.ID)
			})
			if err != nil {
				w.log.Warn("cannot drop an idle kept partition (the sweep drops it later)", "kind", k.name, "experiment_id", b.ExperimentID, "err", err)
			}
		}
		// A partition recorded after the list was read is newer than staleUnits, so it is kept anyway.
		if n, err := k.stale(ctx, w.ch, staleUnits, keep); err != nil {
			w.log.Warn("cannot drop stale partitions", "kind", k.name, "err", err)
		} else if n > 0 {
			w.log.Info("dropped partitions of interrupted refreshes and forgotten ones", "kind", k.name, "partitions", n)
		}
	}
}

// ErrBusy: the experiment is being refreshed already — by another replica, or by this one's
// sweep when an on-demand refresh asks (Refresh returns it, and it is not recorded as a failed
// refresh; a sweep skips the experiment until its next round).
var ErrBusy = errors.New("results: the experiment is being refreshed already")

// reachesStop says whether a snapshot of a stopped experiment counts its data up to the stop
// (snapshots keep milliseconds).
func reachesStop(s Snapshot, x flagsvc.Experiment) bool {
	return !s.DataTo.Before(x.StoppedAt.UTC().Truncate(time.Millisecond))
}

// ErrFinal: the experiment stopped more than its late window ago and its last snapshot
// reaches the stop (nothing received since can count), or its rollups were deleted
// (-results-rollup-retention): that snapshot is its final result.
var ErrFinal = errors.New("results: the experiment's results are final (stopped past its late window, or its rollups deleted)")

func (w *Worker) refresh(ctx context.Context, x flagsvc.Experiment) error {
	return w.refreshAnswering(ctx, x, nil)
}

// refreshAnswering is refresh, or with ask an on-demand refresh: one that waits for the
// experiment's lock and answers once the snapshot is stored, before the totals are brought up
// to date.
func (w *Worker) refreshAnswering(ctx context.Context, x flagsvc.Experiment, ask *onDemand) (err error) {
	start := time.Now() // the real clock: w.now may be a test's
	joined := false     // answered by the snapshot of the refresh it waited for
	defer func() {
		outcome := "ok"
		if joined {
			outcome = "joined"
		} else if errors.Is(err, ErrBusy) {
			outcome = "busy"
		} else if errors.Is(err, ErrFinal) {
			outcome = "final"
		} else if err != nil {
			outcome = "error"
		}
		w.refreshes.WithLabelValues(outcome).Inc()
		if !joined {
			w.duration.Observe(time.Since(start).Seconds())
		}
	}()
	if x.StartedAt == nil {
		return fmt.Errorf("experiment %s has not started", x.Key)
	}
	var release func()
	waited := false
	if ask == nil {
		var ok bool
		if release, ok, err = w.lockExperiment(ctx, x); err != nil {
			return err
		} else if !ok {
			return ErrBusy
		}
	} else if release, waited, err = w.awaitExperiment(ctx, x, ask); err != nil {
		return err
	}
	defer release()
	if waited {
		// The refresh waited for may have read the data up to the ask already.
		last, err := w.store.Snapshots(ctx, x.ID, 1)
		if err != nil {
			return err
		}
		if len(last) > 0 && !last[0].DataTo.Before(ask.at.Truncate(time.Millisecond)) {
			joined = true
			ask.stored()
			return nil
		}
	}
	if ask != nil {
		releaseSlot, err := ask.slot()
		if err != nil {
			return err
		}
		defer releaseSlot()
	}
	if x.StoppedAt != nil {
		// Its rollups may have been dropped (maintainRollups): its results are final then. It is
		// not folded again from the raw events, which the jobs service's raw-event retention
		// may have deleted since (a recomputation would lose days and replace the final
		// snapshot with a wrong one).
		dropped, err := w.store.RollupsDropped(ctx, []string{x.ID})
		if err != nil {
			return err
		}
		if _, final := dropped[x.ID]; final {
			return ErrFinal
		}
		// Past its late window nothing received since can count (a day's last check is
		// LateWindow + Settle after its end), so results that reach the stop are final too:
		// a recomputation could only lose what the raw-event retention deleted meanwhile (the
		// stop day is always read raw).
		if !w.now().Before(x.StoppedAt.Add(w.cfg.LateWindow + w.cfg.Settle)) {
			last, err := w.store.Snapshots(ctx, x.ID, 1)
			if err != nil {
				return err
			}
			if len(last) > 0 && reachesStop(last[0], x) {
				return ErrFinal
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RefreshTimeout)
	defer cancel()
	snap, after, err := w.compute(rctx, x)
	if err == nil {
		err = w.store.SaveSnapshot(rctx, x.ID, snap)
	}
	if err == nil {
		w.toResults.Observe(time.Since(start).Seconds())
		if ask != nil {
			ask.stored()
		}
		if w.beforeTotals != nil {
			w.beforeTotals()
		}
		// The snapshot is stored: a failure here leaves the day it read raw unfolded, which
		// the next refresh reads raw again or folds, or the totals behind, which it reads with
		// the folds they lack and brings up to date.
		if terr := after(rctx); terr != nil && ctx.Err() == nil {
			w.log.Warn("cannot fold the day just ended or bring the experiment's totals up to date", "experiment", x.Key, "err", terr)
		}
	}
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("refresh timed out after %s (-results-refresh-timeout): %w", w.cfg.RefreshTimeout, err)
	}
	// Readers are told when the latest snapshot is not up to date, and why (the results API);
	// a refresh cut short by shutdown or a caller who left is not a failure of the results.
	switch {
	case err == nil:
		if cerr := w.store.ClearFailure(ctx, x.ID); cerr != nil {
			w.log.Warn("cannot clear the recorded refresh failure", "experiment", x.Key, "err", cerr)
		}
	case ctx.Err() == nil:
		if rerr := w.store.RecordFailure(context.WithoutCancel(ctx), x.ID, w.now().UTC(), err); rerr != nil {
			w.log.Warn("cannot record the refresh failure", "experiment", x.Key, "err", rerr)
		}
	}
	return err
}

// partFolds are the recorded folds of one metric part, and what this refresh found about them.
type partFolds struct {
	m    *metricsql.Metric
	part int
	done map[time.Time]Fold
	// late: folded days that received events since their fold (folded again); fresh: folded
	// days checked and found without any.
	late  map[time.Time]bool
	fresh []time.Time
}

// fold brings the daily rollups of (non-ratio) metrics up to `until` and adds the recorded folds
// of every day before it to folds. The metrics missing a day are folded together, up to
// metricsql.MetricsPerPass per query (the day's events read and joined with the units once);
// CUPED covariates are folded per metric, from their cohort's pre-period. Folded days that
// received events since their fold (checkLate) are folded again and their new folds recorded
// instead. clock is the worker's time when the refresh started, before any read.
func (w *Worker) fold(ctx context.Context, x flagsvc.Experiment, qx metricsql.Experiment, ms []*metricsql.Metric, from, until, clock time.Time,
	cuped bool, folds metricsql.Folds) error {
	var metricParts, all []*partFolds
	for _, m := range ms {
		for _, part := range foldedParts(m, cuped) {
			done, err := w.store.Folded(ctx, x.ID, m.Key, m.Version, part)
			if err != nil {
				return err
			}
			p := &partFolds{m: m, part: part, done: done, late: map[time.Time]bool{}}
			all = append(all, p)
			if part == metricsql.PartMetric {
				metricParts = append(metricParts, p)
			}
		}
	}
	if err := w.checkLate(ctx, qx, all, until, clock); err != nil {
		return err
	}
	for d := from; d.Before(until); d = d.Add(24 * time.Hour) {
		var todo []*partFolds
		for _, p := range metricParts {
			if f, ok := p.done[d]; ok && !p.late[d] {
				folds.Add(p.m, metricsql.PartMetric, f.ID)
			} else {
				todo = append(todo, p)
			}
		}
		for len(todo) > 0 {
			batch := todo[:min(len(todo), max(metricsql.MetricsPerPass, 1))]
			todo = todo[len(batch):]
			bms := make([]*metricsql.Metric, len(batch))
			for j, p := range batch {
				bms[j] = p.m
			}
			ids, err := metricsql.FoldDays(ctx, w.ch, qx, bms, d)
			if err != nil {
				return err
			}
			for j, p := range batch {
				if err := w.record(ctx, x, p, d, Fold{ID: ids[j], CheckedAt: clock}); err != nil {
					return err
				}
				folds.Add(p.m, metricsql.PartMetric, ids[j])
			}
		}
	}
	for _, p := range all {
		if p.part != metricsql.PartCovariate {
			continue
		}
		for d := from; d.Before(until); d = d.Add(24 * time.Hour) {
			f, ok := p.done[d]
			if !ok || p.late[d] {
				id, err := metricsql.FoldCovariates(ctx, w.ch, qx, p.m, d)
				if err != nil {
					return err
				}
				f = Fold{ID: id, CheckedAt: clock}
				if err := w.record(ctx, x, p, d, f); err != nil {
					return err
				}
			}
			folds.Add(p.m, metricsql.PartCovariate, f.ID)
		}
	}
	for _, p := range all {
		if err := w.store.MarkChecked(ctx, x.ID, p.m.Key, p.m.Version, p.part, p.fresh, clock); err != nil {
			return err
		}
	}
	return nil
}

// foldedParts are the parts of metric m folded into the rollups: its values, and its CUPED
// covariate when the experiment uses CUPED and m has a pre-period.
func foldedParts(m *metricsql.Metric, cuped bool) []int {
	if cuped && m.CUPEDPreperiod > 0 {
		return []int{metricsql.PartMetric, metricsql.PartCovariate}
	}
	return []int{metricsql.PartMetric}
}

// defersDay says whether a refresh reads the day before until raw and folds it only after its
// snapshot is stored (under the experiment's lock, before the totals are brought up to date):
// when none of the metrics' parts has folded that day yet — the first refreshes past its settle
// margin — and its raw tail, from the day's start to now, is short enough for the sums to read
// in one query (metricsql.OneReadTail). A day's events count the same read raw or from its
// rollups, and the snapshot comes as soon as those of the hour before (5M units: 6.2 s, where
// folding the day first took 8.2-10.7 s; 4.7-5.0 s with the raw tail's events joined in the
// worker). A fold that fails then is tried again by the next
// refresh, which folds first once the tail is longer.
func (w *Worker) defersDay(ctx context.Context, x flagsvc.Experiment, ms []*metricsql.Metric, cuped bool, until, now time.Time) (bool, error) {
	day := until.Add(-24 * time.Hour)
	if now.Sub(day) > metricsql.OneReadTail {
		return false, nil
	}
	for _, m := range ms {
		for _, part := range foldedParts(m, cuped) {
			done, err := w.store.Folded(ctx, x.ID, m.Key, m.Version, part)
			if err != nil {
				return false, err
			}
			if _, ok := done[day]; ok {
				return false, nil
			}
		}
	}
	return true, nil
}

// record records a new fold of a day: the first, or one replacing the day's earlier fold.
func (w *Worker) record(ctx context.Context, x flagsvc.Experiment, p *partFolds, day time.Time, f Fold) error {
	old, ok := p.done[day]
	if !ok {
		return w.store.MarkFolded(ctx, x.ID, p.m.Key, p.m.Version, p.part, day, f)
	}
	w.refolds.Inc()
	w.log.Info("folded a day again: events for it arrived after its fold", "experiment", x.Key, "metric", p.m.Key,
		"part", p.part, "day", day.Format(time.DateOnly))
	return w.store.Refolded(ctx, x.ID, p.m.Key, p.m.Version, p.part, day, old.ID, f)
}

// checkLate marks the folded days (before until) that received events since their fold: a
// metric part's day its events of the day, a CUPED cohort's day its pre-period's events, and
// both any exposure of the experiment on that day or before (a new unit, or a unit's first
// exposure moved). Only folds due a check are looked at (due), in one read for all of them
// (metricsql.LatestArrivals).
func (w *Worker) checkLate(ctx context.Context, qx metricsql.Experiment, parts []*partFolds, until, clock time.Time) error {
	type check struct {
		p       *partFolds
		day, lo time.Time
	}
	var checks []check
	var from, to, since time.Time
	keys := map[string]bool{}
	var keyList []string
	for _, p := range parts {
		for day, f := range p.done {
			if !day.Before(until) || !w.due(day, f.CheckedAt, clock) {
				continue
			}
			lo := day
			if p.part == metricsql.PartCovariate {
				lo = metricsql.Day(day.Add(-p.m.CUPEDPreperiod))
			}
			watermark := f.CheckedAt.Add(-w.cfg.Settle)
			if len(checks) == 0 || lo.Before(from) {
				from = lo
			}
			if len(checks) == 0 || day.Add(24*time.Hour).After(to) {
				to = day.Add(24 * time.Hour)
			}
			if len(checks) == 0 || watermark.Before(since) {
				since = watermark
			}
			checks = append(checks, check{p, day, lo})
			if !keys[p.m.EventKey] {
				keys[p.m.EventKey] = true
				keyList = append(keyList, p.m.EventKey)
			}
		}
	}
	if len(checks) == 0 {
		return nil
	}
	arrivals, err := metricsql.LatestArrivals(ctx, w.ch, qx, keyList, from, to, since, w.cfg.LateWindow)
	if err != nil {
		return err
	}
	for _, c := range checks {
		if arrivals.Since(c.p.m.EventKey, c.lo, c.day, c.p.done[c.day].CheckedAt.Add(-w.cfg.Settle)) {
			c.p.late[c.day] = true
		} else {
			c.p.fresh = append(c.p.fresh, c.day)
		}
	}
	return nil
}

// due says whether the fold of a day, checked (read, or found without late events) at checked,
// is checked for late events at now. A day receives events until LateWindow after its end,
// delivered within Settle; a fold checked after that is final. Until then checks back off
// with the fold's age — at least Settle apart, then a quarter of the time since the day
// ended — so a day receiving a trickle of late events is folded again about 20 times in its
// window rather than at every refresh (every fold writes a new copy of the day's rollup rows,
// and replaced copies are not deleted yet), and a late event waits at most a quarter of its
// day's age. The day's last check is at its close.
func (w *Worker) due(day, checked, now time.Time) bool {
	end := day.Add(24 * time.Hour)
	closes := end.Add(w.cfg.LateWindow + w.cfg.Settle)
	switch {
	case !checked.Before(closes):
		return false
	case !now.Before(closes):
		return true
	}
	return now.Sub(checked) >= max(w.cfg.Settle, checked.Sub(end)/4)
}

// units are an experiment's units as of now for a refresh that started at clock, from its units
// base advanced to the clock (metricsql.AdvanceUnits: the contexts with exposures received
// since the base's watermark merged again, those new or changed appended to its partition), or
// from a new base merged from every state — when it has none, its partition went or is not what
// was recorded, it holds too many revised contexts, or its last such build is a day old. The
// base is recorded in Postgres (a new one before the old partition is dropped).
//
// A base's watermark is metricsql.UnitsMargin before the clock of the refresh that wrote it: exposures
// received since are merged again by the next refresh. One delivered to ClickHouse later still
// after its receipt (a Kafka outage of hours) counts from the next full build, within a day.
func (w *Worker) units(ctx context.Context, x flagsvc.Experiment, qx metricsql.Experiment, now, clock time.Time) (metricsql.Units, error) {
	watermark := clock.Add(-max(metricsql.UnitsMargin, w.cfg.Settle))
	base, built, ok, err := w.store.UnitsBase(ctx, x.ID)
	if err != nil {
		return metricsql.Units{}, err
	}
	full := !ok || clock.Sub(built) >= unitsBaseAge
	var next metricsql.UnitsBase
	if !full {
		var delta int64
		next, delta, err = metricsql.AdvanceUnits(ctx, w.ch, qx, base, w.cfg.LateWindow, watermark)
		switch {
		case err == nil:
			w.unitsDelta.Observe(float64(delta))
		case errors.Is(err, metricsql.ErrUnitsBaseGone):
			w.log.Warn("the experiment's units base is gone: merging every state again", "experiment", x.Key, "err", err)
			full = true
		case errors.Is(err, metricsql.ErrUnitsBaseRevised):
			w.log.Info("the experiment's units base has many revised contexts: merging every state again", "experiment", x.Key, "err", err)
			full = true
		default:
			return metricsql.Units{}, err
		}
	}
	if full {
		if next, err = metricsql.BuildUnitsBase(ctx, w.ch, qx, watermark); err != nil {
			return metricsql.Units{}, err
		}
		w.unitsBases.Inc()
	}
	was := int64(0)
	if ok {
		was = base.ID
	}
	if err := w.replaceKept(ctx, x, keptUnits, next.ID, was, func() (int64, error) {
		return w.store.SetUnitsBase(ctx, x.ID, next, full, clock)
	}); err != nil {
		return metricsql.Units{}, err
	}
	return metricsql.BaseUnits(ctx, w.ch, qx, next, now)
}

// recordedTotals returns the experiment's recorded totals (metricsql.Totals; nil: none, or
// their partition is gone), which the sums read with the folds they lack.
func (w *Worker) recordedTotals(ctx context.Context, x flagsvc.Experiment) (*metricsql.Totals, error) {
	t, ok, err := w.store.Totals(ctx, x.ID)
	if err != nil || !ok {
		return nil, err
	}
	switch err := metricsql.CheckTotals(ctx, w.ch, t); {
	case errors.Is(err, metricsql.ErrTotalsGone):
		w.log.Warn("the experiment's totals are gone: adding up every fold again", "experiment", x.Key, "err", err)
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &t, nil
}

// updateTotals brings the experiment's totals (prev: those recorded, nil: none) up to the
// refresh's folds: written anew when a day was folded (or folded again) since they were, from
// prev or from the rollups alone, and recorded; the replaced partition is dropped.
func (w *Worker) updateTotals(ctx context.Context, x flagsvc.Experiment, qx metricsql.Experiment, prev *metricsql.Totals, folds metricsql.Folds,
	passes int, clock time.Time) error {
	if prev != nil && prev.Current(folds) {
		return w.store.UseTotals(ctx, x.ID, prev.ID, clock)
	}
	outcome := "from_nothing"
	if prev != nil {
		outcome = "from_previous"
	}
	next, err := metricsql.UpdateTotals(ctx, w.ch, qx, prev, folds, passes)
	if err != nil {
		return err
	}
	w.totalsUpdates.WithLabelValues(outcome).Inc()
	return w.replaceKept(ctx, x, keptTotals, next.ID, 0, func() (int64, error) { return w.store.SetTotals(ctx, x.ID, next, clock) })
}

// leaveOutUnfoldable moves to failed the metrics of list that cannot be computed because the
// raw events of the experiment's first day are gone (metricsql.RawEventsGone) and their first
// day was never folded (a metric added to the experiment, or a new version of one, after the
// retention deleted its early days): folding them now would count those days as empty.
// Metrics folded before the deletion keep their rollups and are computed as before.
func (w *Worker) leaveOutUnfoldable(ctx context.Context, x flagsvc.Experiment, first time.Time, list []namedMetric, failed []MetricResult) (
	[]namedMetric, []MetricResult, error) {
	gone, err := metricsql.RawEventsGone(ctx, w.ch, first)
	if err != nil || !gone {
		return list, failed, err
	}
	var kept []namedMetric
	for _, nm := range list {
		foldable := true
		for _, m := range []*metricsql.Metric{nm.query, nm.query.Numerator, nm.query.Denominator} {
			if m == nil || m.Kind == metricsql.Ratio {
				continue
			}
			done, err := w.store.Folded(ctx, x.ID, m.Key, m.Version, metricsql.PartMetric)
			if err != nil {
				return nil, nil, err
			}
			if _, ok := done[first]; !ok {
				foldable = false
			}
		}
		if foldable {
			kept = append(kept, nm)
			continue
		}
		w.log.Warn("metric left out of the results: the raw events of the experiment's first days are gone", "experiment", x.Key,
			"metric", nm.def.Key, "first_day", first.Format(time.DateOnly))
		failed = append(failed, MetricResult{Metric: nm.def.Key, Name: nm.def.Name, Role: nm.role, Kind: nm.def.Kind, Direction: nm.def.Direction,
			MetricVersion: nm.def.Version, Tolerance: nm.tolerance, Variants: []engine.VariantResult{},
			Error: fmt.Sprintf("cannot be computed: the raw events of the experiment's first days (from %s) were deleted by the raw-event "+
				"retention before this metric (version %d) was first computed for it, and counting those days as empty would bias "+
				"it; analyse it in a new experiment", first.Format(time.DateOnly), nm.def.Version)})
	}
	return kept, failed, nil
}

// unitsBaseAge is how long a units base is advanced before it is merged again from every state.
const unitsBaseAge = 24 * time.Hour

type namedMetric struct {
	role      string
	def       flagsvc.Metric
	query     *metricsql.Metric
	tolerance float64
}

// Compute computes a snapshot of an experiment's results now (or at its stop time), then folds
// the day it read raw, if any, and brings its totals up to date.
func (w *Worker) Compute(ctx context.Context, x flagsvc.Experiment) (*Snapshot, error) {
	snap, after, err := w.compute(ctx, x)
	if err != nil {
		return nil, err
	}
	return snap, after(ctx)
}

// compute computes a snapshot; after then folds the day the snapshot read raw (defersDay) and
// brings the experiment's totals up to date for the next refresh (the sums read the totals as
// they were, with the folds since: a refresh that folds a day stores its snapshot before it
// rewrites them).
func (w *Worker) compute(ctx context.Context, x flagsvc.Experiment) (snap *Snapshot, after func(context.Context) error, err error) {
	after = func(context.Context) error { return nil }
	clock := w.now().UTC()
	now := clock
	if x.StoppedAt != nil && x.StoppedAt.Before(now) {
		now = x.StoppedAt.UTC()
	}
	started := x.StartedAt.UTC()
	qx := metricsql.Experiment{EnvironmentID: x.EnvironmentID, Key: x.Key, Start: started}
	var list []namedMetric
	var failed []MetricResult
	versions := map[string]int64{}
	seen := map[string]bool{}
	add := func(role, key string, tolerance float64) error {
		if seen[role+key] {
			return nil
		}
		seen[role+key] = true
		def, q, err := w.defs.Query(ctx, x.Project, key, x.MetricVersions)
		if errors.Is(err, flagsvc.ErrNotFound) {
			// The flag service has no such metric (or ratio part) any more: the other metrics
			// are still computed, and the snapshot says why this one is missing.
			w.log.Warn("metric left out of the results: no definition", "experiment", x.Key, "metric", key, "err", err)
			failed = append(failed, MetricResult{Metric: key, Role: role, MetricVersion: x.MetricVersions[key], Tolerance: tolerance,
				Variants: []engine.VariantResult{}, Error: fmt.Sprintf("cannot load the metric's definition (version %d): %v", x.MetricVersions[key], err)})
			return nil
		}
		if err != nil {
			return fmt.Errorf("metric %s: %w", key, err)
		}
		for _, m := range []*metricsql.Metric{q, q.Numerator, q.Denominator} {
			if m != nil {
				versions[m.Key] = m.Version
			}
		}
		list = append(list, namedMetric{role: role, def: def, query: q, tolerance: tolerance})
		return nil
	}
	for _, k := range x.Metrics.Primary {
		if err := add("primary", k, 0); err != nil {
			return nil, nil, err
		}
	}
	for _, k := range x.Metrics.Secondary {
		if err := add("secondary", k, 0); err != nil {
			return nil, nil, err
		}
	}
	for _, g := range x.Metrics.Guardrails {
		if err := add("guardrail", g.Metric, g.Tolerance); err != nil {
			return nil, nil, err
		}
	}
	// A metric whose first day was never folded is folded from the raw events, which the
	// raw-event retention may have deleted: it fails rather than counting those days empty.
	until := metricsql.Day(now.Add(-w.cfg.Settle))
	first := qx.FirstDay()
	if until.After(first) {
		var err error
		if list, failed, err = w.leaveOutUnfoldable(ctx, x, first, list, failed); err != nil {
			return nil, nil, err
		}
	}
	// The units once for every query of this refresh (folds and sums): the experiment's units
	// base, advanced to this refresh and kept for the next.
	units, err := w.units(ctx, x, qx, now, clock)
	if err != nil {
		return nil, nil, err
	}
	exposure := units.Exposure
	qx = qx.WithUnits(units)
	// Fold every finished day (from the analysis' first day — the start's, or the day before
	// for a start within metricsql.ClockSkew of midnight — to the one before the settle point),
	// except the last one when it is read raw and folded after the snapshot (defersDay).
	foldedUpTo := first
	folds := metricsql.Folds{}
	var ms []*metricsql.Metric
	deferred := false // the day just ended is read raw, and folded after the snapshot
	if until.After(first) {
		foldedUpTo = until
		folded := map[string]bool{}
		for _, nm := range list {
			for _, m := range []*metricsql.Metric{nm.query, nm.query.Numerator, nm.query.Denominator} {
				if m != nil && m.Kind != metricsql.Ratio && !folded[m.Key] {
					folded[m.Key] = true
					ms = append(ms, m)
				}
			}
		}
		// The rollups' partition key, for when the flag service no longer has the experiment
		// (maintained): no other table keeps its environment.
		if err := w.store.RememberExperiment(ctx, x.ID, x.EnvironmentID, x.Project, x.Key); err != nil {
			return nil, nil, err
		}
		if deferred, err = w.defersDay(ctx, x, ms, x.Analysis.CUPED, until, now); err != nil {
			return nil, nil, err
		}
		if deferred {
			foldedUpTo = until.Add(-24 * time.Hour)
		}
		if err := w.fold(ctx, x, qx, ms, first, foldedUpTo, clock, x.Analysis.CUPED, folds); err != nil {
			return nil, nil, err
		}
	}
	snapshot := metricsql.Snapshot{FoldedUpTo: foldedUpTo, Folds: folds, Now: now, Passes: metricsql.PassesFor(exposure.Total())}
	if len(folds) > 0 && qx.HashedUnits() {
		if snapshot.Totals, err = w.recordedTotals(ctx, x); err != nil {
			return nil, nil, err
		}
	}
	if deferred || (len(folds) > 0 && qx.HashedUnits()) {
		after = func(ctx context.Context) error {
			all := folds
			if deferred {
				all = metricsql.Folds{}
				if err := w.fold(ctx, x, qx, ms, first, until, clock, x.Analysis.CUPED, all); err != nil {
					return fmt.Errorf("fold %s after the snapshot: %w", foldedUpTo.Format(time.DateOnly), err)
				}
			}
			if len(all) == 0 || !qx.HashedUnits() {
				return nil
			}
			return w.updateTotals(ctx, x, qx, snapshot.Totals, all, snapshot.Passes, clock)
		}
	}
	snap = &Snapshot{Project: x.Project, Experiment: x.Key, ExperimentID: x.ID, Status: x.Status, ComputedAt: w.now().UTC(),
		DataFrom: started, DataTo: now, Control: x.Control, MetricVersions: versions, Exposures: exposure.Units, Metrics: []MetricResult{},
		Analysis: AnalysisSettings{Engine: x.Analysis.Engine, Alpha: x.Analysis.Alpha, Sided: x.Analysis.Sided, Sequential: x.Analysis.Sequential,
			CUPED: x.Analysis.CUPED, Correction: x.Analysis.Correction, Difference: "relative"},
		DataQuality: DataQuality{TooFewUnits: []TooFewUnits{}}}
	if x.Analysis.Sequential {
		snap.Analysis.SequentialTuning = x.Analysis.SequentialTuning
	}
	order := orderVariations(x)
	// Data quality: SRM against the planned split, multiple exposures.
	counts, weights := make([]int64, len(order)), make([]float64, len(order))
	total := int64(0)
	expected := map[string]float64{}
	for i, v := range order {
		counts[i] = exposure.Units[v.Variation]
		weights[i] = float64(v.Weight) / 100000
		expected[v.Variation] = weights[i]
		total += counts[i]
		if _, ok := snap.Exposures[v.Variation]; !ok {
			snap.Exposures[v.Variation] = 0
		}
	}
	srm := engine.SRMPValue(counts, weights)
	snap.DataQuality.SRM = SRM{PValue: finite(srm), Flagged: srm < engine.SRMAlertThreshold, Expected: expected}
	if all := total + exposure.Multiple; all > 0 {
		f := float64(exposure.Multiple) / float64(all)
		snap.DataQuality.MultipleExposures = Multiple{Contexts: exposure.Multiple, Fraction: f, Flagged: f > engine.MultipleExposureAlertThreshold}
	}
	elapsed := now.Sub(started).Hours() / 24
	planned := plannedDays(x)
	snap.Progress = Progress{ElapsedDays: round(elapsed, 3), PlannedDays: planned}
	if elapsed > 0 {
		// Less than a day in, the day's traffic is not known yet: count it as one day's.
		snap.Progress.UnitsPerDay = round(float64(total)/math.Max(elapsed, 1), 1)
		snap.Progress.RemainingDays = round(math.Max(0, planned-elapsed), 2)
	}
	// Sums for every metric, then one engine request for primary+secondary (with the
	// correction) and one for the guardrails (without).
	type computed struct {
		nm   namedMetric
		in   engine.Metric
		sums map[string]metricsql.VariantSums
	}
	var judged, guards []computed
	// All the metrics in one pass per hash slice: the units are read once, not once per metric.
	reqs := make([]metricsql.SumsRequest, len(list))
	for i, nm := range list {
		reqs[i] = metricsql.SumsRequest{Metric: nm.query,
			CUPED: x.Analysis.CUPED && nm.query.Kind != metricsql.Ratio && nm.query.CUPEDPreperiod > 0}
	}
	allSums, err := metricsql.SumsOf(ctx, w.ch, qx, reqs, snapshot)
	if err != nil {
		return nil, nil, err
	}
	for i, nm := range list {
		cuped, sums := reqs[i].CUPED, allSums[i]
		byVar := map[string]metricsql.VariantSums{}
		for _, s := range sums {
			byVar[s.Variation] = s
		}
		in := engine.Metric{Key: nm.def.Key, Kind: metricsql.EngineKind(nm.def.Kind), Inverse: nm.def.Direction == "decrease", CUPED: cuped}
		for _, v := range order {
			s := byVar[v.Variation]
			in.Variants = append(in.Variants, s.Engine(v.Variation, cuped))
			if nm.def.MinSampleSize > 0 && s.N < int64(nm.def.MinSampleSize) {
				snap.DataQuality.TooFewUnits = append(snap.DataQuality.TooFewUnits, TooFewUnits{Metric: nm.def.Key, Variation: v.Variation,
					N: s.N, Minimum: nm.def.MinSampleSize})
			}
		}
		c := computed{nm: nm, in: in, sums: byVar}
		if nm.role == "guardrail" {
			guards = append(guards, c)
		} else {
			judged = append(judged, c)
		}
	}
	opts := engineOptions(x.Analysis)
	// Guardrails are read two-sided whatever the experiment's alternative: that one is about
	// the primary metrics, while a guardrail's harm is a rise or a drop as its direction says.
	guardOpts := opts
	guardOpts.Sided = engine.TwoSided
	groups := []struct {
		metrics    []computed
		opts       engine.Options
		correction engine.Correction
	}{{judged, opts, engine.Correction(x.Analysis.Correction)}, {guards, guardOpts, engine.NoCorrection}}
	for _, g := range groups {
		group := g.metrics
		if len(group) == 0 {
			continue
		}
		req := engine.Request{Options: g.opts, Correction: g.correction, Metrics: make([]engine.Metric, len(group))}
		for i, c := range group {
			req.Metrics[i] = c.in
		}
		res, rejected, err := analyze(req)
		if err != nil {
			return nil, nil, fmt.Errorf("analyze: %w", err)
		}
		for i, c := range group {
			mr := MetricResult{Metric: c.nm.def.Key, Name: c.nm.def.Name, Role: c.nm.role, Kind: c.nm.def.Kind, Direction: c.nm.def.Direction,
				MetricVersion: c.nm.def.Version, CUPED: c.in.CUPED, Tolerance: c.nm.tolerance}
			if why, ok := rejected[i]; ok {
				w.log.Warn("metric left out of the results: the engine rejected its sums", "experiment", x.Key, "metric", c.nm.def.Key, "err", why)
				mr.Variants, mr.Error = []engine.VariantResult{}, "the statistics engine rejected its sums: "+why
				snap.Metrics = append(snap.Metrics, mr)
				continue
			}
			mr.Variants = res[i].Variants
			if c.nm.role == "primary" && snap.Progress.UnitsPerDay > 0 && total > 0 {
				// The planned units the metric's n will count: for a mean only the units that sent
				// an event (at their share of the units so far), for every other kind all of them.
				n := int64(0)
				for _, v := range c.in.Variants {
					n += v.N
				}
				users := snap.Progress.UnitsPerDay * planned * math.Min(1, float64(n)/float64(total))
				mr.MDE = plannedMDE(c.in, users, len(order), splitWeights(x), opts)
			}
			snap.Metrics = append(snap.Metrics, mr)
		}
	}
	snap.Metrics = append(snap.Metrics, failed...)
	return snap, after, nil
}

// analyze runs the engine over a group of metrics; a metric the engine rejects as invalid
// (non-finite sums: a value so large its square overflows) is left out and the rest analysed
// (and corrected) without it. res is indexed like req.Metrics (zero where rejected); rejected
// says why, by index. err is an invalid request not due to one metric.
func analyze(req engine.Request) (res []engine.MetricResult, rejected map[int]string, err error) {
	res, rejected = make([]engine.MetricResult, len(req.Metrics)), map[int]string{}
	var valid []engine.Metric
	var idx []int // position in req.Metrics of each valid metric
	for i, m := range req.Metrics {
		var inv *engine.InvalidError
		if err := engine.ValidateMetric(m); errors.As(err, &inv) {
			rejected[i] = inv.Field + ": " + inv.Message
			continue
		}
		valid, idx = append(valid, m), append(idx, i)
	}
	if len(valid) == 0 {
		return res, rejected, nil
	}
	req.Metrics = valid
	out, err := engine.Analyze(req)
	if err != nil {
		return nil, nil, err
	}
	for j, m := range out.Metrics {
		res[idx[j]] = m
	}
	return res, rejected, nil
}

// orderVariations puts the control first, then the experiment's other variations.
func orderVariations(x flagsvc.Experiment) []flagsvc.Variation {
	out := make([]flagsvc.Variation, 0, len(x.Variations))
	for _, v := range x.Variations {
		if v.Variation == x.Control {
			out = append(out, v)
		}
	}
	for _, v := range x.Variations {
		if v.Variation != x.Control {
			out = append(out, v)
		}
	}
	return out
}

func engineOptions(a flagsvc.Analysis) engine.Options {
	o := engine.Options{Engine: engine.EngineKind(a.Engine), Difference: engine.Relative, Alpha: a.Alpha, Sided: engine.TwoSided}
	switch a.Sided {
	case "greater":
		o.Sided = engine.Greater
	case "less":
		o.Sided = engine.Less
	}
	if a.Sequential && o.Engine == engine.Frequentist {
		o.Sequential = &engine.Sequential{Tuning: a.SequentialTuning}
	}
	return o
}

// plannedMDE is the relative effect the planned sample detects with 80% power, from the
// control arm's mean and variance, at the planned split (weights, control first).
func plannedMDE(m engine.Metric, users float64, variants int, weights []float64, o engine.Options) *float64 {
	if len(m.Variants) == 0 || m.Kind == engine.KindRatio {
		return nil
	}
	c := m.Variants[0]
	if c.N < 2 || c.Sum == 0 {
		return nil
	}
	mean := c.Sum / float64(c.N)
	variance := mean * (1 - mean)
	if m.Kind == engine.KindMean {
		variance = (c.SumSquares - c.Sum*c.Sum/float64(c.N)) / float64(c.N-1)
	}
	if variance <= 0 || users < 4 {
		return nil
	}
	res, err := engine.Power(engine.PowerRequest{Mean: mean, Variance: variance, Users: int64(users), Variants: variants,
		Weights: weights, Alpha: o.Alpha, TargetPower: engine.DefaultTargetPower, Sequential: o.Sequential})
	if err != nil || res.MDE == nil {
		return nil
	}
	v := round(*res.MDE, 6)
	return &v
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 1
	}
	return f
}

func round(f float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(f*p) / p
}

// plannedDays is the experiment's planned duration in days (0 when none is set).
func plannedDays(x flagsvc.Experiment) float64 {
	d, _ := time.ParseDuration(x.PlannedDuration)
	return d.Hours() / 24
}
