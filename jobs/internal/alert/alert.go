// Package alert owns what the jobs service tells people: the alert model (a guardrail breach, a
// sample-ratio mismatch, a scheduled change that failed, the weekly stale-flag digest), the
// outbox that delivers each alert exactly once, and the dispatcher that drains it to a Sender
// (Slack). Alerts are data; how they look in Slack is the slack package's business.
package alert

import (
	"time"
)

// Kind names what an alert is about.
type Kind string

// Alert kinds.
const (
	KindGuardrailBreach       Kind = "guardrail_breach"
	KindSRM                   Kind = "sample_ratio_mismatch"
	KindScheduledChangeFailed Kind = "scheduled_change_failed"
	KindStaleDigest           Kind = "stale_digest"
)

// Alert is one message to deliver. Key identifies it for exactly-once delivery: the outbox
// accepts one alert per key, ever (a second Enqueue with the same key is a no-op).
type Alert struct {
	Key     string    `json:"key"`
	Kind    Kind      `json:"kind"`
	Project string    `json:"project"`
	Channel string    `json:"channel"`
	At      time.Time `json:"at"`

	Breach          *Breach          `json:"breach,omitempty"`
	SRM             *SRM             `json:"srm,omitempty"`
	ScheduledFailed *ScheduledFailed `json:"scheduled_failed,omitempty"`
	Digest          *Digest          `json:"digest,omitempty"`
}

// Owner is who owns a flag, for the "who to talk to" line.
type Owner struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Label is how the owner is shown: "Name <email>", the email, the name, or "nobody".
func (o Owner) Label() string {
	switch {
	case o.Name != "" && o.Email != "":
		return o.Name + " <" + o.Email + ">"
	case o.Email != "":
		return o.Email
	case o.Name != "":
		return o.Name
	}
	return "no owner set"
}

// Actions a breach can lead to (what the flag service did).
const (
	ActionServeControl = "serve_control"
	ActionTurnOff      = "turn_off"
	ActionNone         = "alert_only"
)

// Breach is a guardrail whose metric regressed beyond its tolerance.
type Breach struct {
	GuardrailID string `json:"guardrail_id"`
	Environment string `json:"environment"`
	Flag        string `json:"flag"`
	Experiment  string `json:"experiment,omitempty"`
	Metric      string `json:"metric"`
	MetricName  string `json:"metric_name,omitempty"`
	// Direction is the metric's good direction: "increase" or "decrease".
	Direction string `json:"direction"`
	// Tolerance is the tolerated relative degradation (0.02 = 2%).
	Tolerance float64 `json:"tolerance"`
	// Action is the guardrail's configured action (alert or rollback); ActionTaken what the
	// flag service did (serve_control, turn_off, none).
	Action      string `json:"action"`
	ActionTaken string `json:"action_taken"`
	Control     string `json:"control"`
	Treatment   string `json:"treatment"`
	// Effect, Interval and PValue are the relative effect of the treatment on the metric, its
	// always-valid interval and p-value (sequential test, STATS.md §5).
	Effect   float64    `json:"effect"`
	Interval [2]float64 `json:"interval"`
	PValue   float64    `json:"p_value"`
	// Absolute: Effect and Interval are the difference of means, the control's mean being 0.
	Absolute      bool      `json:"absolute,omitempty"`
	Alpha         float64   `json:"alpha"`
	ControlN      int64     `json:"control_n"`
	TreatmentN    int64     `json:"treatment_n"`
	ControlMean   float64   `json:"control_mean"`
	TreatmentMean float64   `json:"treatment_mean"`
	Owner         Owner     `json:"owner"`
	DashboardURL  string    `json:"dashboard_url,omitempty"`
	BreachedAt    time.Time `json:"breached_at"`
	// SplitMismatch is the experiment's traffic split when it did not match its weights at the
	// breach (nil otherwise, and for rollouts): the arms then differ in more than the
	// variation, so the effect may be biased.
	SplitMismatch *SplitMismatch `json:"split_mismatch,omitempty"`
	// MultipleExposures counts the units that saw several variations (left out of the
	// comparison), set when they are more than 1% of the units; MultipleExposureShare is
	// that share.
	MultipleExposures     int64   `json:"multiple_exposures,omitempty"`
	MultipleExposureShare float64 `json:"multiple_exposure_share,omitempty"`
}

// SplitMismatch is a traffic split that does not match the weights (sample ratio mismatch,
// STATS.md §7).
type SplitMismatch struct {
	PValue   float64            `json:"p_value"`
	Observed map[string]int64   `json:"observed"`
	Expected map[string]float64 `json:"expected"`
}

// SRM is a running experiment whose traffic split does not match its weights.
type SRM struct {
	Environment  string             `json:"environment"`
	Flag         string             `json:"flag"`
	Experiment   string             `json:"experiment"`
	PValue       float64            `json:"p_value"`
	Observed     map[string]int64   `json:"observed"`
	Expected     map[string]float64 `json:"expected"`
	Owner        Owner              `json:"owner"`
	DashboardURL string             `json:"dashboard_url,omitempty"`
}

// ScheduledFailed is a scheduled change that was not applied.
type ScheduledFailed struct {
	ChangeID    int64  `json:"change_id"`
	Step        int    `json:"step"`
	Steps       int    `json:"steps"`
	Environment string `json:"environment"`
	Flag        string `json:"flag"`
	// What describes the change ("turn on", "rollout on 25%, off 75%").
	What string `json:"what"`
	// Reason is why it failed, for people.
	Reason string `json:"reason"`
	// Edited is true when the flag was changed since the change was scheduled (a 409).
	Edited          bool   `json:"edited"`
	ExpectedVersion int64  `json:"expected_version,omitempty"`
	ScheduledBy     string `json:"scheduled_by"`
	Owner           Owner  `json:"owner"`
	DashboardURL    string `json:"dashboard_url,omitempty"`
}

// Digest is a project's weekly stale-flag digest.
type Digest struct {
	Flags        []DigestFlag `json:"flags"`
	DashboardURL string       `json:"dashboard_url,omitempty"`
}

// DigestFlag is one stale flag in a digest: the environments it is stale in and why.
type DigestFlag struct {
	Flag    string   `json:"flag"`
	Owner   Owner    `json:"owner"`
	Reasons []string `json:"reasons"`
}

// Truncate cuts s to at most n characters (Slack counts characters, and a cut must not split
// one), ending with "…".
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
