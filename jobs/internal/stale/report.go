package stale

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/jobs/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// EnvReport is a flag's staleness in one environment.
type EnvReport struct {
	Environment string   `json:"environment"`
	Reasons     []Reason `json:"reasons"`
}

// FlagReport is one stale flag.
type FlagReport struct {
	Flag       string              `json:"flag"`
	Name       string              `json:"name"`
	Owner      alert.Owner         `json:"owner"`
	Temporary  bool                `json:"temporary"`
	CreatedAt  time.Time           `json:"created_at"`
	Thresholds settings.Thresholds `json:"thresholds"`
	// Reason is every reason in one line for people ("production: no evaluations for 30 days …").
	Reason string `json:"reason"`
	// FlagReasons hold in every environment (a temporary flag past its removal date).
	FlagReasons []Reason    `json:"flag_reasons"`
	Environment []EnvReport `json:"environments"`
}

// Report is a project's stale flags.
type Report struct {
	Project     string              `json:"project"`
	GeneratedAt time.Time           `json:"generated_at"`
	Thresholds  settings.Thresholds `json:"thresholds"`
	Items       []FlagReport        `json:"items"`
}

// FlagService is what the reporter reads from the flag service.
type FlagService interface {
	Flags(ctx context.Context, project string) ([]flagsvc.Flag, error)
	Flag(ctx context.Context, project, flag string) (flagsvc.FlagDetail, error)
	Environments(ctx context.Context, project string) ([]flagsvc.Environment, error)
	Ruleset(ctx context.Context, project, env string) (flagsvc.Ruleset, error)
	Experiments(ctx context.Context, project, status, env string) ([]flagsvc.Experiment, error)
	Members(ctx context.Context) ([]flagsvc.Member, error)
}

// Settings reads the thresholds.
type Settings interface {
	ProjectSettings(ctx context.Context, project string) (settings.Project, error)
	FlagSettings(ctx context.Context, project string) (map[string]settings.Flag, error)
}

// Reporter builds stale-flag reports.
type Reporter struct {
	Settings Settings
	CH       driver.Conn
	Defaults settings.Thresholds
	Now      func() time.Time
}

func (r *Reporter) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Query narrows a report.
type Query struct {
	Project     string
	Environment string // "" for all
	Flag        string // "" for all
}

// Report builds the report of a project through fs (the caller's token for the API, the
// service's for digests).
func (r *Reporter) Report(ctx context.Context, fs FlagService, q Query) (Report, error) {
	now := r.now().UTC()
	rep := Report{Project: q.Project, GeneratedAt: now, Items: []FlagReport{}}
	ps, err := r.Settings.ProjectSettings(ctx, q.Project)
	if err != nil {
		return rep, err
	}
	overrides, err := r.Settings.FlagSettings(ctx, q.Project)
	if err != nil {
		return rep, err
	}
	rep.Thresholds = settings.Resolve(r.Defaults, &ps, nil)
	flags, err := fs.Flags(ctx, q.Project)
	if err != nil {
		return rep, err
	}
	envs, err := fs.Environments(ctx, q.Project)
	if err != nil {
		return rep, err
	}
	if q.Environment != "" {
		var keep []flagsvc.Environment
		for _, e := range envs {
			if e.Key == q.Environment {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			return rep, errs.NotFound("environment %q not found", q.Environment)
		}
		envs = keep
	}
	concluded := map[string]Concluded{}
	if xs, err := fs.Experiments(ctx, q.Project, "concluded", ""); err == nil {
		for _, x := range xs {
			c := Concluded{Key: x.Key, ConcludedAt: x.ConcludedAt}
			if x.Decision != nil {
				c.Outcome, c.Variation = x.Decision.Outcome, x.Decision.Variation
			}
			concluded[x.Key] = c
		}
	} else if !errors.Is(err, errs.ErrNotFound) {
		return rep, err
	}
	owners := map[string]alert.Owner{}
	if ms, err := fs.Members(ctx); err == nil {
		for _, m := range ms {
			owners[m.ID] = alert.Owner{Name: m.Name, Email: m.Email}
		}
	}
	// Thresholds per flag, and the longest lookback any of them needs.
	thresholds := map[string]settings.Thresholds{}
	lookback := 1
	for _, f := range flags {
		var o *settings.Flag
		if v, ok := overrides[f.Key]; ok {
			o = &v
		}
		th := settings.Resolve(r.Defaults, &ps, o)
		thresholds[f.Key] = th
		lookback = max(lookback, th.NoEvaluationsDays, th.SingleVariationDays)
	}
	today := day(now)
	windowStart := today.AddDate(0, 0, -(lookback - 1))
	envFacts := map[string]map[string]*EnvFacts{} // flag → env → facts
	for _, e := range envs {
		days, err := clickhouse.EvaluationDays(ctx, r.CH, e.ID, windowStart)
		if err != nil {
			return rep, errs.Unavailable(err, "cannot read evaluation counts")
		}
		before, err := clickhouse.LastEvaluated(ctx, r.CH, e.ID, windowStart)
		if err != nil {
			return rep, errs.Unavailable(err, "cannot read evaluation counts")
		}
		rs, err := fs.Ruleset(ctx, q.Project, e.Key)
		if err != nil {
			return rep, err
		}
		carried := map[string][]Concluded{}
		for _, rf := range rs.Flags {
			for _, k := range rf.ExperimentKeys() {
				if c, ok := concluded[k]; ok {
					carried[rf.Key] = append(carried[rf.Key], c)
				}
			}
		}
		byFlag := map[string]map[time.Time]map[string]uint64{}
		for _, c := range days {
			if byFlag[c.Flag] == nil {
				byFlag[c.Flag] = map[time.Time]map[string]uint64{}
			}
			if byFlag[c.Flag][c.Day] == nil {
				byFlag[c.Flag][c.Day] = map[string]uint64{}
			}
			byFlag[c.Flag][c.Day][c.Variation] += c.Evaluations
		}
		for _, f := range flags {
			if envFacts[f.Key] == nil {
				envFacts[f.Key] = map[string]*EnvFacts{}
			}
			envFacts[f.Key][e.Key] = &EnvFacts{Environment: e.Key, Days: byFlag[f.Key], LastBefore: before[f.Key],
				WindowStart: windowStart, CarriedExperiments: carried[f.Key]}
		}
	}
	for _, f := range flags {
		if q.Flag != "" && f.Key != q.Flag {
			continue
		}
		if o, ok := overrides[f.Key]; ok && o.Ignore {
			continue
		}
		ff := FlagFacts{Key: f.Key, CreatedAt: f.CreatedAt, Temporary: f.Temporary, RemovalDate: f.RemovalDate}
		th := thresholds[f.Key]
		item := FlagReport{Flag: f.Key, Name: f.Name, Owner: owners[f.OwnerID], Temporary: f.Temporary, CreatedAt: f.CreatedAt,
			Thresholds: th, FlagReasons: FlagReasons(ff, now), Environment: []EnvReport{}}
		if item.FlagReasons == nil {
			item.FlagReasons = []Reason{}
		}
		var detail *flagsvc.FlagDetail
		for _, e := range envs {
			facts := envFacts[f.Key][e.Key]
			// The configuration's last change matters only to a flag that served one variation.
			if singleVariation(facts, th, now) {
				if detail == nil {
					d, err := fs.Flag(ctx, q.Project, f.Key)
					if err != nil {
						return rep, err
					}
					detail = &d
				}
				facts.ConfigUpdatedAt = detail.Configs[e.Key].UpdatedAt
			}
			if rs := EnvReasons(ff, *facts, th, now); len(rs) > 0 {
				item.Environment = append(item.Environment, EnvReport{Environment: e.Key, Reasons: rs})
			}
		}
		if len(item.FlagReasons) > 0 || len(item.Environment) > 0 {
			item.Reason = strings.Join(Summary(item.FlagReasons, item.Environment), "; ")
			rep.Items = append(rep.Items, item)
		}
	}
	sort.Slice(rep.Items, func(i, j int) bool { return rep.Items[i].Flag < rep.Items[j].Flag })
	return rep, nil
}

// singleVariation reports whether one variation got every evaluation in the window (before
// the configuration is looked at).
func singleVariation(e *EnvFacts, th settings.Thresholds, now time.Time) bool {
	if th.SingleVariationDays <= 0 || e == nil {
		return false
	}
	from := day(now).AddDate(0, 0, -(th.SingleVariationDays - 1))
	seen := map[string]bool{}
	for d, vs := range e.Days {
		if d.Before(from) {
			continue
		}
		for v, n := range vs {
			if n > 0 {
				seen[v] = true
			}
		}
	}
	return len(seen) == 1
}

// DigestFlags turns a report into a digest's lines.
func DigestFlags(rep Report) []alert.DigestFlag {
	out := make([]alert.DigestFlag, 0, len(rep.Items))
	for _, it := range rep.Items {
		out = append(out, alert.DigestFlag{Flag: it.Flag, Owner: it.Owner, Reasons: Summary(it.FlagReasons, it.Environment)})
	}
	return out
}

// ErrNotStale is returned when archiving a flag the report does not list.
var ErrNotStale = errs.PreconditionFailed("flag", "the flag is not stale; archive it in the flag service if you mean it")

// ArchiveComment is the audit comment of archiving a stale flag.
func ArchiveComment(by string, it FlagReport) string {
	lines := Summary(it.FlagReasons, it.Environment)
	return fmt.Sprintf("archived as stale by %s via the jobs service: %s", by, joinMax(lines, 900))
}

func joinMax(lines []string, n int) string {
	out := ""
	for i, l := range lines {
		if i > 0 {
			l = "; " + l
		}
		if len(out)+len(l) > n {
			return out + "; …"
		}
		out += l
	}
	return out
}

var _ FlagService = (*flagsvc.Client)(nil)
