package guardrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/stats/engine"
	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// FlagService is what the sweep needs of the flag service (with the service token).
type FlagService interface {
	Guardrails(ctx context.Context, status string) ([]flagsvc.Guardrail, error)
	EnvironmentGuardrails(ctx context.Context, project, env string) ([]flagsvc.Guardrail, error)
	ReportBreach(ctx context.Context, g flagsvc.Guardrail, r flagsvc.BreachReport) (flagsvc.Guardrail, error)
	Experiment(ctx context.Context, project, key string) (flagsvc.Experiment, error)
	Experiments(ctx context.Context, project, status, env string) ([]flagsvc.Experiment, error)
	Projects(ctx context.Context) ([]flagsvc.Project, error)
	MetricVersion(ctx context.Context, project, key string, version int64) (flagsvc.Metric, error)
	Flag(ctx context.Context, project, flag string) (flagsvc.FlagDetail, error)
	Members(ctx context.Context) ([]flagsvc.Member, error)
}

// Store is what the sweep needs of Postgres.
type Store interface {
	StartBreach(ctx context.Context, b postgres.Breach) (int64, bool, error)
	ReportingBreaches(ctx context.Context) ([]postgres.Breach, error)
	CompleteBreach(ctx context.Context, id int64, breachedAt time.Time, actionTaken string, a alert.Alert) (bool, error)
	AbandonBreach(ctx context.Context, id int64) error
	Enqueue(ctx context.Context, a alert.Alert) (bool, error)
}

// Sweeper checks every active guardrail once per run.
type Sweeper struct {
	Flags FlagService
	Store Store
	CH    driver.Conn
	Log   *slog.Logger
	Test  Test
	// DashboardURL prefixes links in alerts ("" for none).
	DashboardURL string
	// Parallel bounds concurrent guardrail checks (ClickHouse queries) (default 4).
	Parallel int
	// SRMMinUnits is the fewest units an experiment needs before its split is judged (default 200).
	SRMMinUnits int64
	// Wake is called after alerts were enqueued (the dispatcher delivers them at once).
	Wake func()
	// OnBreach is called after a breach was reported (best effort side effects).
	OnBreach func(ctx context.Context, project, experiment string)
	Now      func() time.Time

	defs *metricsql.Definitions
	m    *sweepMetrics
}

type sweepMetrics struct {
	checked  *prometheus.CounterVec
	breaches prometheus.Counter
	srm      prometheus.Counter
	errors   *prometheus.CounterVec
}

// NewSweeper returns a sweeper registering its metrics on reg.
func NewSweeper(fs FlagService, st Store, ch driver.Conn, log *slog.Logger, reg prometheus.Registerer) *Sweeper {
	m := &sweepMetrics{
		checked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_guardrail_checks_total",
			Help: "Guardrail checks by outcome (ok, breached, undecided, skipped)."}, []string{"outcome"}),
		breaches: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobs_guardrail_breaches_total",
			Help: "Guardrail breaches reported to the flag service by this replica."}),
		srm: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobs_srm_alerts_total",
			Help: "Sample-ratio-mismatch alerts enqueued by this replica."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_guardrail_errors_total",
			Help: "Errors while checking guardrails, by stage."}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.checked, m.breaches, m.srm, m.errors)
	}
	return &Sweeper{Flags: fs, Store: st, CH: ch, Log: log, m: m,
		defs: &metricsql.Definitions{Load: func(ctx context.Context, project, key string, version int64) (metricsql.Definition, error) {
			return fs.MetricVersion(ctx, project, key, version)
		}}}
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Result summarizes a sweep.
type Result struct {
	Checked   int `json:"checked"`
	Breached  int `json:"breached"`
	Undecided int `json:"undecided"`
	Skipped   int `json:"skipped"`
	Errors    int `json:"errors"`
	SRM       int `json:"srm_alerts"`
}

// breachRecord is what a breach row keeps: enough to report it again and alert after a crash.
type breachRecord struct {
	Guardrail  flagsvc.Guardrail `json:"guardrail"`
	Decision   Decision          `json:"decision"`
	MetricName string            `json:"metric_name"`
	Direction  string            `json:"direction"`
	Owner      alert.Owner       `json:"owner"`
	// Quality is what was wrong with the data at the breach (said in the alert).
	Quality quality `json:"quality"`
}

// quality is what may make a comparison wrong, as the results' data quality checks it.
type quality struct {
	SplitMismatch         *alert.SplitMismatch `json:"split_mismatch,omitempty"`
	MultipleExposures     int64                `json:"multiple_exposures,omitempty"`
	MultipleExposureShare float64              `json:"multiple_exposure_share,omitempty"`
}

// dataQuality judges the units of a comparison: the experiment's split against its weights
// (x nil for a rollout, whose weights are not the guardrail's; judged from minUnits units, like
// the SRM alert) and the units exposed to several variations.
func dataQuality(exp metricsql.Exposure, x *flagsvc.Experiment, minUnits int64) quality {
	var q quality
	if total := exp.Total(); total > 0 {
		if share := float64(exp.Multiple) / float64(total); share > engine.MultipleExposureAlertThreshold {
			q.MultipleExposures, q.MultipleExposureShare = exp.Multiple, share
		}
	}
	if x == nil || len(x.Variations) < 2 {
		return q
	}
	counts, weights := make([]int64, len(x.Variations)), make([]float64, len(x.Variations))
	var n int64
	var wsum float64
	for i, v := range x.Variations {
		counts[i], weights[i] = exp.Units[v.Variation], float64(v.Weight)
		n += counts[i]
		wsum += weights[i]
	}
	if n < minUnits || wsum == 0 {
		return q
	}
	if p := engine.SRMPValue(counts, weights); p < engine.SRMAlertThreshold {
		m := &alert.SplitMismatch{PValue: p, Observed: map[string]int64{}, Expected: map[string]float64{}}
		for i, v := range x.Variations {
			m.Observed[v.Variation], m.Expected[v.Variation] = counts[i], weights[i]/wsum
		}
		q.SplitMismatch = m
	}
	return q
}

// sweepCache holds what one sweep looks up more than once.
type sweepCache struct {
	mu          sync.Mutex
	experiments map[string]*flagsvc.Experiment
	members     map[string]alert.Owner
	membersErr  error
	membersOnce sync.Once
}

// Sweep finishes interrupted breach reports, checks every active guardrail, and checks the
// traffic split of every running experiment.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var res Result
	cache := &sweepCache{experiments: map[string]*flagsvc.Experiment{}}
	s.resume(ctx)
	gs, err := s.Flags.Guardrails(ctx, "active")
	if err != nil {
		s.m.errors.WithLabelValues("list").Inc()
		return res, fmt.Errorf("list guardrails: %w", err)
	}
	parallel := s.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	var mu sync.Mutex
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, g := range gs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcome, err := s.check(ctx, cache, g)
			mu.Lock()
			defer mu.Unlock()
			res.Checked++
			switch {
			case err != nil:
				res.Errors++
				if ctx.Err() == nil {
					s.Log.Warn("guardrail check failed", "guardrail", g.ID, "project", g.Project, "flag", g.Flag, "metric", g.Metric, "err", err)
				}
			case outcome == "breached":
				res.Breached++
			case outcome == "undecided":
				res.Undecided++
			case outcome == "skipped":
				res.Skipped++
			}
		}()
	}
	wg.Wait()
	res.SRM = s.checkSRM(ctx, cache)
	return res, nil
}

// check runs one guardrail's test and reports a breach.
func (s *Sweeper) check(ctx context.Context, cache *sweepCache, g flagsvc.Guardrail) (string, error) {
	var qx metricsql.Experiment
	var versions map[string]int64
	var variations []string
	var xp *flagsvc.Experiment
	if g.Experiment == "" {
		// A plain rollout: its units are the contexts the rollout served since the guardrail
		// was created; the metric at its current version.
		qx = metricsql.Experiment{EnvironmentID: g.EnvironmentID, Flag: g.Flag, Start: g.CreatedAt.UTC(),
			Variations: append([]string{g.Control}, g.Treatments...)}
	} else {
		x, err := s.experiment(ctx, cache, g.Project, g.Experiment)
		if err != nil {
			s.m.errors.WithLabelValues("experiment").Inc()
			return "", err
		}
		if x.Status != "running" || x.StartedAt == nil {
			s.m.checked.WithLabelValues("skipped").Inc()
			return "skipped", nil
		}
		xp = x
		qx = metricsql.Experiment{EnvironmentID: x.EnvironmentID, Key: x.Key, Start: x.StartedAt.UTC()}
		versions = x.MetricVersions
		for _, v := range x.Variations {
			variations = append(variations, v.Variation)
		}
	}
	if qx.EnvironmentID == "" {
		qx.EnvironmentID = g.EnvironmentID
	}
	def, q, err := s.defs.Query(ctx, g.Project, g.Metric, versions)
	if err != nil {
		s.m.errors.WithLabelValues("metric").Inc()
		return "", err
	}
	now := s.now().UTC()
	// Large experiments are summed in several passes over slices of their units (memory).
	exposure, err := metricsql.Exposures(ctx, s.CH, qx, now)
	if err != nil {
		s.m.errors.WithLabelValues("clickhouse").Inc()
		return "", err
	}
	// No rollups are assumed: the results workers' folding state is theirs, so every raw
	// event since the start is read (FoldedUpTo = the start's day). See BENCHMARKS.md.
	sums, err := metricsql.Sums(ctx, s.CH, qx, q, metricsql.Snapshot{FoldedUpTo: metricsql.Day(qx.Start), Now: now,
		Passes: metricsql.PassesFor(exposure.Total())}, false)
	if err != nil {
		s.m.errors.WithLabelValues("clickhouse").Inc()
		return "", err
	}
	byVar := map[string]engine.VariantSums{}
	for _, v := range sums {
		byVar[v.Variation] = v.Engine(v.Variation, false)
	}
	in := Input{Metric: def.Key, Kind: metricsql.EngineKind(def.Kind), Direction: def.Direction, Tolerance: g.Tolerance, Control: withKey(byVar, g.Control)}
	treatments := g.Treatments
	if len(treatments) == 0 {
		for _, v := range variations {
			if v != g.Control {
				treatments = append(treatments, v)
			}
		}
	}
	for _, t := range treatments {
		in.Treatments = append(in.Treatments, withKey(byVar, t))
	}
	if in.Direction == "" {
		in.Direction = Increase
	}
	test := s.Test
	if def.MinSampleSize > 0 && int64(def.MinSampleSize) > test.withDefaults().MinUnits {
		test.MinUnits = int64(def.MinSampleSize)
	}
	d, err := Decide(in, test)
	if err != nil {
		return "", err
	}
	if !d.Breached {
		outcome := "ok"
		if d.Reason != "within tolerance" {
			outcome = "undecided"
		}
		s.m.checked.WithLabelValues(outcome).Inc()
		s.Log.Debug("guardrail checked", "guardrail", g.ID, "metric", g.Metric, "effect", d.Effect, "interval", d.Interval, "reason", d.Reason)
		return outcome, nil
	}
	s.m.checked.WithLabelValues("breached").Inc()
	s.Log.Warn("guardrail breached", "guardrail", g.ID, "project", g.Project, "environment", g.Environment, "flag", g.Flag,
		"metric", g.Metric, "treatment", d.Treatment, "effect", d.Effect, "interval", d.Interval, "p_value", d.PValue)
	rec := breachRecord{Guardrail: g, Decision: d, MetricName: def.Name, Direction: in.Direction, Owner: s.owner(ctx, cache, g),
		Quality: dataQuality(exposure, xp, s.srmMinUnits())}
	raw, _ := json.Marshal(rec)
	id, started, err := s.Store.StartBreach(ctx, postgres.Breach{GuardrailID: g.ID, Project: g.Project, Environment: g.Environment,
		Flag: g.Flag, Experiment: g.Experiment, Metric: g.Metric, Decision: raw})
	if err != nil {
		return "", err
	}
	if !started {
		return "breached", nil // another replica (or an earlier run) is reporting it
	}
	return "breached", s.report(ctx, id, rec)
}

func withKey(m map[string]engine.VariantSums, key string) engine.VariantSums {
	v := m[key]
	v.Key = key
	return v
}

// report tells the flag service (which records the breach once and rolls back) and, in one
// transaction with completing the breach row, enqueues the alert.
func (s *Sweeper) report(ctx context.Context, id int64, rec breachRecord) error {
	g, d := rec.Guardrail, rec.Decision
	answer, err := s.Flags.ReportBreach(ctx, g, flagsvc.BreachReport{Effect: d.Effect, Interval: d.Interval, PValue: d.PValue, Absolute: d.Absolute})
	if errors.Is(err, errs.ErrConflict) || errors.Is(err, errs.ErrNotFound) {
		// Already breached — by us before a crash, or by another replica — or gone.
		answer, err = s.current(ctx, g)
		if err != nil {
			return err
		}
		if answer.Breach == nil {
			s.Log.Info("guardrail is no longer active and has no breach; nothing to report", "guardrail", g.ID, "status", answer.Status)
			return s.Store.AbandonBreach(ctx, id)
		}
	} else if err != nil {
		s.m.errors.WithLabelValues("report").Inc()
		return fmt.Errorf("report breach of guardrail %s: %w", g.ID, err)
	}
	b := answer.Breach
	if b == nil {
		return fmt.Errorf("the flag service recorded no breach for guardrail %s", g.ID)
	}
	a := alert.Alert{
		Key: fmt.Sprintf("guardrail:%s:%d", g.ID, b.At.UnixNano()), Kind: alert.KindGuardrailBreach, Project: g.Project, At: b.At,
		Breach: &alert.Breach{GuardrailID: g.ID, Environment: g.Environment, Flag: g.Flag, Experiment: g.Experiment,
			Metric: g.Metric, MetricName: rec.MetricName, Direction: rec.Direction, Tolerance: g.Tolerance, Action: g.Action,
			ActionTaken: b.ActionTaken, Control: g.Control, Treatment: d.Treatment,
			Effect: b.Effect, Interval: b.Interval, PValue: b.PValue, Absolute: b.Absolute, Alpha: d.IntervalAlpha,
			ControlN: d.ControlN, TreatmentN: d.TreatmentN, ControlMean: d.ControlMean, TreatmentMean: d.TreatmentMean,
			Owner: rec.Owner, DashboardURL: s.link(g), BreachedAt: b.At, SplitMismatch: rec.Quality.SplitMismatch,
			MultipleExposures: rec.Quality.MultipleExposures, MultipleExposureShare: rec.Quality.MultipleExposureShare},
	}
	enqueued, err := s.Store.CompleteBreach(ctx, id, b.At, b.ActionTaken, a)
	if err != nil {
		return err
	}
	s.m.breaches.Inc()
	s.Log.Warn("guardrail breach reported", "guardrail", g.ID, "action_taken", b.ActionTaken, "alert", a.Key, "alert_enqueued", enqueued)
	if enqueued && s.Wake != nil {
		s.Wake()
	}
	if enqueued && s.OnBreach != nil {
		s.OnBreach(ctx, g.Project, g.Experiment)
	}
	return nil
}

// current reads a guardrail's state from its environment's list.
func (s *Sweeper) current(ctx context.Context, g flagsvc.Guardrail) (flagsvc.Guardrail, error) {
	list, err := s.Flags.EnvironmentGuardrails(ctx, g.Project, g.Environment)
	if errors.Is(err, errs.ErrNotFound) {
		return flagsvc.Guardrail{ID: g.ID, Status: "deleted"}, nil
	}
	if err != nil {
		return g, err
	}
	for _, c := range list {
		if c.ID == g.ID {
			return c, nil
		}
	}
	return flagsvc.Guardrail{ID: g.ID, Status: "deleted"}, nil
}

// resume finishes breach reports a crash (or a failed call) left behind.
func (s *Sweeper) resume(ctx context.Context) {
	pending, err := s.Store.ReportingBreaches(ctx)
	if err != nil {
		s.Log.Warn("cannot read unfinished breach reports", "err", err)
		return
	}
	for _, b := range pending {
		var rec breachRecord
		if err := json.Unmarshal(b.Decision, &rec); err != nil {
			s.Log.Error("unreadable breach record", "id", b.ID, "err", err)
			continue
		}
		if err := s.report(ctx, b.ID, rec); err != nil {
			s.Log.Warn("finishing a breach report failed; will retry", "guardrail", b.GuardrailID, "err", err)
		}
	}
}

func (s *Sweeper) experiment(ctx context.Context, cache *sweepCache, project, key string) (*flagsvc.Experiment, error) {
	id := project + "/" + key
	cache.mu.Lock()
	x, ok := cache.experiments[id]
	cache.mu.Unlock()
	if ok {
		return x, nil
	}
	got, err := s.Flags.Experiment(ctx, project, key)
	if err != nil {
		return nil, err
	}
	cache.mu.Lock()
	cache.experiments[id] = &got
	cache.mu.Unlock()
	return &got, nil
}

// owner names the flag's owner (best effort: an alert without an owner beats no alert).
func (s *Sweeper) owner(ctx context.Context, cache *sweepCache, g flagsvc.Guardrail) alert.Owner {
	f, err := s.Flags.Flag(ctx, g.Project, g.Flag)
	if err != nil || f.OwnerID == "" {
		return alert.Owner{}
	}
	cache.membersOnce.Do(func() {
		ms, err := s.Flags.Members(ctx)
		cache.membersErr = err
		cache.members = map[string]alert.Owner{}
		for _, m := range ms {
			cache.members[m.ID] = alert.Owner{Name: m.Name, Email: m.Email}
		}
	})
	if o, ok := cache.members[f.OwnerID]; ok {
		return o
	}
	return alert.Owner{Name: "user " + f.OwnerID}
}

func (s *Sweeper) link(g flagsvc.Guardrail) string {
	if s.DashboardURL == "" {
		return ""
	}
	base := strings.TrimRight(s.DashboardURL, "/") + "/p/" + url.PathEscape(g.Project)
	if g.Experiment != "" {
		return base + "/experiments/" + url.PathEscape(g.Experiment)
	}
	return base + "/flags/" + url.PathEscape(g.Flag) + "?environment=" + url.QueryEscape(g.Environment)
}

func (s *Sweeper) srmMinUnits() int64 {
	if s.SRMMinUnits <= 0 {
		return 200
	}
	return s.SRMMinUnits
}

// checkSRM alerts once per running experiment whose traffic split does not match its weights
// (p below engine.SRMAlertThreshold, STATS.md §7).
func (s *Sweeper) checkSRM(ctx context.Context, cache *sweepCache) int {
	projects, err := s.Flags.Projects(ctx)
	if err != nil {
		s.m.errors.WithLabelValues("srm").Inc()
		s.Log.Warn("SRM check: cannot list projects", "err", err)
		return 0
	}
	minUnits := s.srmMinUnits()
	var (
		mu     sync.Mutex
		alerts int
		wg     sync.WaitGroup
	)
	parallel := s.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	sem := make(chan struct{}, parallel)
	for _, p := range projects {
		xs, err := s.Flags.Experiments(ctx, p.Key, "running", "")
		if err != nil {
			s.m.errors.WithLabelValues("srm").Inc()
			s.Log.Warn("SRM check: cannot list experiments", "project", p.Key, "err", err)
			continue
		}
		for _, x := range xs {
			if x.StartedAt == nil || x.EnvironmentID == "" || len(x.Variations) < 2 {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if s.checkExperimentSRM(ctx, cache, p.Key, x, minUnits) {
					mu.Lock()
					alerts++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return alerts
}

// checkExperimentSRM enqueues the experiment's SRM alert (once per experiment run) when its
// split is off; it reports whether an alert was enqueued now.
func (s *Sweeper) checkExperimentSRM(ctx context.Context, cache *sweepCache, project string, x flagsvc.Experiment, minUnits int64) bool {
	exp, err := metricsql.Exposures(ctx, s.CH, metricsql.Experiment{EnvironmentID: x.EnvironmentID, Key: x.Key, Start: *x.StartedAt}, s.now())
	if err != nil {
		s.m.errors.WithLabelValues("srm").Inc()
		s.Log.Warn("SRM check: exposures", "experiment", x.Key, "err", err)
		return false
	}
	vs := append([]flagsvc.ExperimentVariation(nil), x.Variations...)
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].Variation == x.Control && vs[j].Variation != x.Control })
	counts, weights := make([]int64, len(vs)), make([]float64, len(vs))
	observed, expected := map[string]int64{}, map[string]float64{}
	var total int64
	var wsum float64
	for i, v := range vs {
		counts[i], weights[i] = exp.Units[v.Variation], float64(v.Weight)
		observed[v.Variation] = counts[i]
		total += counts[i]
		wsum += weights[i]
	}
	if total < minUnits || wsum == 0 {
		return false
	}
	for i, v := range vs {
		expected[v.Variation] = weights[i] / wsum
	}
	pv := engine.SRMPValue(counts, weights)
	if pv >= engine.SRMAlertThreshold {
		return false
	}
	link := ""
	if s.DashboardURL != "" {
		link = strings.TrimRight(s.DashboardURL, "/") + "/p/" + url.PathEscape(project) + "/experiments/" + url.PathEscape(x.Key)
	}
	a := alert.Alert{Key: fmt.Sprintf("srm:%s:%s:%d", x.EnvironmentID, x.Key, x.StartedAt.Unix()), Kind: alert.KindSRM, Project: project,
		At: s.now().UTC(), SRM: &alert.SRM{Environment: x.Environment, Flag: x.Flag, Experiment: x.Key, PValue: pv,
			Observed: observed, Expected: expected, Owner: s.owner(ctx, cache, flagsvc.Guardrail{Project: project, Flag: x.Flag}), DashboardURL: link}}
	ok, err := s.Store.Enqueue(ctx, a)
	if err != nil {
		s.Log.Warn("SRM alert", "experiment", x.Key, "err", err)
		return false
	}
	if ok {
		s.m.srm.Inc()
		s.Log.Warn("sample ratio mismatch", "project", project, "experiment", x.Key, "p_value", pv, "observed", observed)
		if s.Wake != nil {
			s.Wake()
		}
	}
	return ok
}

var _ FlagService = (*flagsvc.Client)(nil)
var _ Store = (*postgres.Store)(nil)
