// Package stale decides which flags are finished and should be removed from code: a flag is
// stale in an environment when it was not evaluated for a while, served one variation to
// every evaluation for a while, is a temporary flag past its planned removal date, or still
// carries the rollout of an experiment that was concluded. Each verdict carries its evidence.
// The rules are pure (Evaluate); Reporter gathers the facts from the flag service and the
// evaluation counts in ClickHouse.
package stale

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/settings"
)

// Reason codes.
const (
	NoEvaluations       = "no_evaluations"
	SingleVariation     = "single_variation"
	PastRemovalDate     = "past_removal_date"
	ExperimentConcluded = "experiment_concluded"
)

// Reason is why a flag is stale, for people (Message) and tools (Code, Evidence).
type Reason struct {
	Code     string         `json:"code"`
	Message  string         `json:"message"`
	Evidence map[string]any `json:"evidence"`
}

// Concluded is a concluded experiment whose rollout a flag may still carry.
type Concluded struct {
	Key         string
	Outcome     string
	Variation   string
	ConcludedAt *time.Time
}

// EnvFacts is what is known about a flag in one environment.
type EnvFacts struct {
	Environment string
	// Days maps each UTC day of the lookback window to the evaluations per variation.
	Days map[time.Time]map[string]uint64
	// LastBefore is the last day with evaluations before the window (zero: none).
	LastBefore time.Time
	// WindowStart is the first day counts were read for.
	WindowStart time.Time
	// ConfigUpdatedAt is when the flag's configuration in the environment last changed (zero:
	// unknown).
	ConfigUpdatedAt time.Time
	// CarriedExperiments are the experiments whose rollouts the flag serves here.
	CarriedExperiments []Concluded
}

// FlagFacts is what is known about a flag.
type FlagFacts struct {
	Key         string
	CreatedAt   time.Time
	Temporary   bool
	RemovalDate string // YYYY-MM-DD
}

// day truncates to the UTC day.
func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// FlagReasons are the environment-independent reasons: a temporary flag past its removal date.
func FlagReasons(f FlagFacts, now time.Time) []Reason {
	if !f.Temporary || f.RemovalDate == "" {
		return nil
	}
	d, err := time.Parse(time.DateOnly, f.RemovalDate)
	if err != nil || !day(now).After(d) {
		return nil
	}
	overdue := int(day(now).Sub(d).Hours() / 24)
	return []Reason{{Code: PastRemovalDate,
		Message:  fmt.Sprintf("temporary flag past its planned removal date %s (%d days ago)", f.RemovalDate, overdue),
		Evidence: map[string]any{"removal_date": f.RemovalDate, "days_overdue": overdue}}}
}

// EnvReasons are the reasons a flag is stale in one environment under the thresholds.
func EnvReasons(f FlagFacts, e EnvFacts, th settings.Thresholds, now time.Time) []Reason {
	today := day(now)
	var out []Reason
	// No evaluations for N days: none on the last N days (today included), and the flag is at
	// least N days old (a new flag has not had the chance).
	if n := th.NoEvaluationsDays; n > 0 {
		from := today.AddDate(0, 0, -(n - 1))
		var last time.Time
		var seen bool
		for d, vs := range e.Days {
			if total(vs) == 0 {
				continue
			}
			if !d.Before(from) {
				seen = true
			}
			if d.After(last) {
				last = d
			}
		}
		if last.IsZero() {
			last = e.LastBefore
		}
		if !seen && !f.CreatedAt.IsZero() && !day(f.CreatedAt).After(today.AddDate(0, 0, -n)) {
			ev := map[string]any{"days": n, "since": from.Format(time.DateOnly)}
			msg := fmt.Sprintf("no evaluations for %d days", n)
			if !last.IsZero() {
				ev["last_evaluated"] = last.Format(time.DateOnly)
				msg += fmt.Sprintf(" (last on %s)", last.Format(time.DateOnly))
			} else {
				msg += " (none on record)"
			}
			out = append(out, Reason{Code: NoEvaluations, Message: msg, Evidence: ev})
		}
	}
	// One variation served to every evaluation for M days: evaluations on the first and the
	// last part of the window all went to one variation, and the configuration did not change
	// in the window (a change would have reset what is served).
	if m := th.SingleVariationDays; m > 0 {
		from := today.AddDate(0, 0, -(m - 1))
		per := map[string]uint64{}
		var first, last time.Time
		for d, vs := range e.Days {
			if d.Before(from) || total(vs) == 0 {
				continue
			}
			for v, n := range vs {
				if n > 0 {
					per[v] += n
				}
			}
			if first.IsZero() || d.Before(first) {
				first = d
			}
			if d.After(last) {
				last = d
			}
		}
		covered := !e.WindowStart.After(from) && !f.CreatedAt.IsZero() && !day(f.CreatedAt).After(from)
		unchanged := !e.ConfigUpdatedAt.IsZero() && e.ConfigUpdatedAt.Before(from)
		if len(per) == 1 && covered && unchanged {
			var v string
			var n uint64
			for v, n = range per {
			}
			out = append(out, Reason{Code: SingleVariation,
				Message: fmt.Sprintf("served %q to 100%% of %d evaluations for %d days", v, n, m),
				Evidence: map[string]any{"days": m, "variation": v, "evaluations": n, "first_day": first.Format(time.DateOnly),
					"last_day": last.Format(time.DateOnly), "config_updated_at": e.ConfigUpdatedAt.UTC().Format(time.RFC3339)}})
		}
	}
	// The flag still carries a concluded experiment's rollout.
	for _, x := range e.CarriedExperiments {
		ev := map[string]any{"experiment": x.Key, "outcome": x.Outcome}
		msg := fmt.Sprintf("experiment %q was concluded", x.Key)
		if x.Outcome != "" {
			msg += " (" + x.Outcome
			if x.Variation != "" {
				msg += " " + x.Variation
				ev["variation"] = x.Variation
			}
			msg += ")"
		}
		if x.ConcludedAt != nil {
			ev["concluded_at"] = x.ConcludedAt.UTC().Format(time.RFC3339)
		}
		out = append(out, Reason{Code: ExperimentConcluded, Message: msg + " but the flag still serves its rollout", Evidence: ev})
	}
	return out
}

func total(vs map[string]uint64) uint64 {
	var n uint64
	for _, c := range vs {
		n += c
	}
	return n
}

// Summary is the reasons of one flag, one line per environment, for digests.
func Summary(flagReasons []Reason, envs []EnvReport) []string {
	var lines []string
	for _, r := range flagReasons {
		lines = append(lines, r.Message)
	}
	sorted := append([]EnvReport(nil), envs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Environment < sorted[j].Environment })
	for _, e := range sorted {
		msgs := make([]string, len(e.Reasons))
		for i, r := range e.Reasons {
			msgs[i] = r.Message
		}
		lines = append(lines, e.Environment+": "+strings.Join(msgs, "; "))
	}
	return lines
}
