// Package settings holds what a project configures in the jobs service: the Slack channel its
// alerts go to, its stale-flag thresholds (defaults from the service's configuration, overridden
// per project, overridden per flag) and whether it gets the weekly digest.
package settings

import (
	"time"

	"github.com/switchyard-io/switchyard/platform/errs"
)

// Project is one project's settings. Nil thresholds mean the service's defaults.
type Project struct {
	Project                  string    `json:"project"`
	SlackChannel             string    `json:"slack_channel"`
	StaleNoEvaluationsDays   *int      `json:"stale_no_evaluations_days"`
	StaleSingleVariationDays *int      `json:"stale_single_variation_days"`
	DigestEnabled            bool      `json:"digest_enabled"`
	UpdatedAt                time.Time `json:"updated_at"`
	UpdatedBy                string    `json:"updated_by"`
}

// Flag overrides the stale thresholds of one flag, or excludes it from stale reports.
type Flag struct {
	Project             string    `json:"project"`
	Flag                string    `json:"flag"`
	NoEvaluationsDays   *int      `json:"no_evaluations_days"`
	SingleVariationDays *int      `json:"single_variation_days"`
	Ignore              bool      `json:"ignore"`
	UpdatedAt           time.Time `json:"updated_at"`
	UpdatedBy           string    `json:"updated_by"`
}

// Thresholds decide when a flag is stale.
type Thresholds struct {
	// NoEvaluationsDays: stale after this many days without an evaluation.
	NoEvaluationsDays int `json:"no_evaluations_days"`
	// SingleVariationDays: stale after serving one variation to every evaluation this long.
	SingleVariationDays int `json:"single_variation_days"`
}

// DefaultThresholds are the defaults: 30 days without evaluations, 14 days of one
// variation.
var DefaultThresholds = Thresholds{NoEvaluationsDays: 30, SingleVariationDays: 14}

// MaxDays bounds a threshold (the evaluation rollup is queried over this many days).
const MaxDays = 366

// Resolve returns the thresholds of a flag: the flag's override, else the project's, else def.
func Resolve(def Thresholds, p *Project, f *Flag) Thresholds {
	t := def
	if p != nil {
		if p.StaleNoEvaluationsDays != nil {
			t.NoEvaluationsDays = *p.StaleNoEvaluationsDays
		}
		if p.StaleSingleVariationDays != nil {
			t.SingleVariationDays = *p.StaleSingleVariationDays
		}
	}
	if f != nil {
		if f.NoEvaluationsDays != nil {
			t.NoEvaluationsDays = *f.NoEvaluationsDays
		}
		if f.SingleVariationDays != nil {
			t.SingleVariationDays = *f.SingleVariationDays
		}
	}
	return t
}

// ValidateDays checks a threshold given by a client.
func ValidateDays(field string, d *int) error {
	if d != nil && (*d < 1 || *d > MaxDays) {
		return errs.Invalid(field, "must be between 1 and %d days", MaxDays)
	}
	return nil
}

// ValidateChannel checks a Slack channel id or name (empty means the default channel).
func ValidateChannel(c string) error {
	if len(c) > 80 {
		return errs.Invalid("slack_channel", "at most 80 characters")
	}
	for _, r := range c {
		if r <= ' ' || r == ',' {
			return errs.Invalid("slack_channel", "a channel id (C0123…) or name (#alerts) without spaces or commas")
		}
	}
	return nil
}
