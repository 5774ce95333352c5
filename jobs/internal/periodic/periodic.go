// Package periodic runs the jobs service's periodic jobs on robfig/cron schedules: each run
// is skipped while the previous one is still going, bounded by a timeout, optionally confined
// to the replica that leads the job (package leader), and counted in Prometheus metrics.
package periodic

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/switchyard-io/switchyard/jobs/internal/leader"
)

// Job is one periodic job.
type Job struct {
	Name string
	// Schedule is a cron spec (five fields, or @every 1m, @weekly …).
	Schedule string
	// Leader confines runs to the replica holding the job's advisory lock.
	Leader bool
	// Timeout bounds one run (default: 10 minutes).
	Timeout time.Duration
	// Run does the work; scheduledFor is the schedule's activation time this run belongs to
	// (the same on every replica, so it can key exactly-once records).
	Run func(ctx context.Context, scheduledFor time.Time) error
}

// Parse checks a cron spec (five fields or a descriptor) the way Runner reads it.
func Parse(spec string) (cron.Schedule, error) {
	return cron.ParseStandard(spec)
}

// Runner runs jobs until its context ends. It implements lifecycle.Component.
type Runner struct {
	Pool     *pgxpool.Pool
	Log      *slog.Logger
	Location *time.Location
	Jobs     []Job

	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	lastOK   *prometheus.GaugeVec
	leading  *prometheus.GaugeVec

	mu        sync.Mutex
	electors  map[string]*leader.Elector
	triggered map[string]chan time.Time
}

// New returns a runner registering its metrics on reg.
func New(pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer, jobs ...Job) *Runner {
	r := &Runner{Pool: pool, Log: log, Location: time.UTC, Jobs: jobs,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_runs_total",
			Help: "Periodic job runs by job and outcome (ok, error, not_leader)."}, []string{"job", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "jobs_run_duration_seconds",
			Help: "Duration of periodic job runs.", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12)}, []string{"job"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jobs_last_success_timestamp_seconds",
			Help: "When each periodic job last succeeded on this replica."}, []string{"job"}),
		leading: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jobs_leader",
			Help: "1 when this replica leads the job."}, []string{"job"}),
		electors: map[string]*leader.Elector{}, triggered: map[string]chan time.Time{},
	}
	if reg != nil {
		reg.MustRegister(r.runs, r.duration, r.lastOK, r.leading)
	}
	return r
}

// Name implements lifecycle.Component.
func (r *Runner) Name() string { return "periodic jobs" }

// Run schedules the jobs and blocks until ctx ends; then it waits for running jobs to return
// and resigns every leadership.
func (r *Runner) Run(ctx context.Context) error {
	c := cron.New(cron.WithLocation(r.Location))
	// wg counts running jobs; loops the goroutines that start triggered runs. Both the cron
	// scheduler and loops call wg.Add, so both are stopped before wg.Wait (an Add racing the
	// Wait panics: "WaitGroup is reused before previous Wait has returned").
	var wg, loops sync.WaitGroup
	for _, j := range r.Jobs {
		sched, err := Parse(j.Schedule)
		if err != nil {
			return fmt.Errorf("job %s: schedule %q: %w", j.Name, j.Schedule, err)
		}
		if j.Leader {
			r.mu.Lock()
			r.electors[j.Name] = leader.New(r.Pool, j.Name, r.Log)
			r.mu.Unlock()
		}
		busy := make(chan struct{}, 1)
		trigger := make(chan time.Time, 1)
		r.mu.Lock()
		r.triggered[j.Name] = trigger
		r.mu.Unlock()
		start := func(at time.Time) {
			if ctx.Err() != nil {
				return // shutting down: no new runs
			}
			select {
			case busy <- struct{}{}:
			default:
				r.Log.Debug("job still running; skipping this activation", "job", j.Name)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-busy }()
				r.RunOnce(ctx, j, at)
			}()
		}
		c.Schedule(sched, cron.FuncJob(func() { start(activation(sched, time.Now().In(r.Location))) }))
		loops.Add(1)
		go func() {
			defer loops.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case at := <-trigger:
					start(at)
				}
			}
		}()
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	loops.Wait()
	wg.Wait()
	r.mu.Lock()
	for _, e := range r.electors {
		e.Resign()
	}
	r.mu.Unlock()
	return nil
}

// Trigger runs a job now (unless it is running), as if its schedule fired at at.
func (r *Runner) Trigger(name string, at time.Time) bool {
	r.mu.Lock()
	ch := r.triggered[name]
	r.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case ch <- at:
		return true
	default:
		return false
	}
}

// RunOnce runs one activation of a job: under its leader lock when it has one, with its
// timeout, logging and counting the outcome.
func (r *Runner) RunOnce(ctx context.Context, j Job, scheduledFor time.Time) {
	log := r.Log.With("job", j.Name)
	if j.Leader {
		r.mu.Lock()
		e := r.electors[j.Name]
		if e == nil {
			e = leader.New(r.Pool, j.Name, r.Log)
			r.electors[j.Name] = e
		}
		r.mu.Unlock()
		lead, err := e.Lead(ctx)
		if err != nil {
			log.Warn("leader election failed", "err", err)
			r.runs.WithLabelValues(j.Name, "error").Inc()
			return
		}
		if !lead {
			r.leading.WithLabelValues(j.Name).Set(0)
			r.runs.WithLabelValues(j.Name, "not_leader").Inc()
			return
		}
		r.leading.WithLabelValues(j.Name).Set(1)
	}
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := j.Run(jctx, scheduledFor)
	r.duration.WithLabelValues(j.Name).Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() == nil {
			log.Error("job failed", "err", err, "duration", time.Since(start).String())
		}
		r.runs.WithLabelValues(j.Name, "error").Inc()
		return
	}
	r.runs.WithLabelValues(j.Name, "ok").Inc()
	r.lastOK.WithLabelValues(j.Name).SetToCurrentTime()
	log.Debug("job done", "duration", time.Since(start).String())
}

// activation is the schedule's latest activation at or before now, to the second: the same
// instant on every replica for cron specs (a weekly digest fired at 09:00:00.3 on one replica
// and 09:00:01.1 on another belongs to the 09:00 run). Constant-delay schedules (@every) have
// no wall-clock anchor; their activation is now.
func activation(s cron.Schedule, now time.Time) time.Time {
	now = now.Truncate(time.Second)
	if _, ok := s.(cron.ConstantDelaySchedule); ok {
		return now
	}
	// Walk forward from eight days back (enough for weekly schedules).
	t := s.Next(now.Add(-8 * 24 * time.Hour))
	if t.After(now) || t.IsZero() {
		return now
	}
	for {
		next := s.Next(t)
		if next.After(now) || next.IsZero() {
			return t
		}
		t = next
	}
}
