package slack

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
)

// Message is a rendered alert: Text is the notification and fallback text, Blocks the Block
// Kit layout.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// maxDigestFlags bounds a digest (Slack allows 50 blocks per message).
const maxDigestFlags = 40

// Render lays an alert out as Block Kit: what happened, by how much, what was done, who owns
// it and a link to the dashboard.
func Render(a alert.Alert) Message {
	switch {
	case a.Breach != nil:
		return renderBreach(a, a.Breach)
	case a.SRM != nil:
		return renderSRM(a, a.SRM)
	case a.ScheduledFailed != nil:
		return renderScheduled(a, a.ScheduledFailed)
	case a.Digest != nil:
		return renderDigest(a, a.Digest)
	}
	return Message{Text: alert.Summary(a), Blocks: []slack.Block{section(alert.Summary(a))}}
}

func renderBreach(a alert.Alert, b *alert.Breach) Message {
	metric := "`" + b.Metric + "`"
	if b.MetricName != "" {
		metric = esc(b.MetricName) + " (`" + b.Metric + "`)"
	}
	better := "higher is better"
	if b.Direction == "decrease" {
		better = "lower is better"
	}
	harm := math.Abs(b.Effect)
	done := "Alert only: nothing was changed (the guardrail's action is `alert`)."
	short := "No change was made."
	switch b.ActionTaken {
	case alert.ActionServeControl:
		done = fmt.Sprintf("Rolled back automatically: `%s` now serves the control `%s` to everyone in %s.", b.Flag, b.Control, b.Environment)
		short = fmt.Sprintf("Rolled back: %s now serves %s.", b.Flag, b.Control)
	case alert.ActionTurnOff:
		done = fmt.Sprintf("Rolled back automatically: `%s` was turned off in %s.", b.Flag, b.Environment)
		short = fmt.Sprintf("Rolled back: %s was turned off.", b.Flag)
	}
	what := "Rollout"
	if b.Experiment != "" {
		what = "Experiment `" + b.Experiment + "`"
	}
	// How the effect reads: relative, or — when the control's mean is 0 and there is no relative
	// effect — a difference of means.
	worse, effect, low, high := pct(harm)+" worse", signedPct(b.Effect)+" relative", signedPct(b.Interval[0]), signedPct(b.Interval[1])
	tolerance := "tolerance " + pct(b.Tolerance)
	if b.Absolute {
		worse, effect, low, high = num(harm)+" per unit worse", signedNum(b.Effect)+" per unit, absolute: the control's mean is 0", signedNum(b.Interval[0]), signedNum(b.Interval[1])
		tolerance = "from a control mean of 0, beyond any tolerance"
	}
	text := fmt.Sprintf("Guardrail breached: %s is %s with %s=%s in %s (%s). %s",
		b.Metric, worse, b.Flag, b.Treatment, b.Environment, tolerance, short)
	// What may make the comparison wrong, so nobody trusts the numbers blindly.
	var quality []string
	if m := b.SplitMismatch; m != nil {
		obs, exp := split(m.Observed, m.Expected)
		text += fmt.Sprintf(" Warning: sample ratio mismatch (p = %s).", pval(m.PValue))
		quality = append(quality, fmt.Sprintf("*Sample ratio mismatch* (p = %s): units %s, expected %s. The arms differ in more than the variation, so the effect may be biased — find the cause before re-releasing.",
			pval(m.PValue), strings.Join(obs, ", "), strings.Join(exp, ", ")))
	}
	if b.MultipleExposures > 0 {
		text += fmt.Sprintf(" Warning: %s of units saw several variations.", pct(b.MultipleExposureShare))
		quality = append(quality, fmt.Sprintf("*Multiple exposures*: %d units (%s) saw several variations and were left out of the comparison.",
			b.MultipleExposures, pct(b.MultipleExposureShare)))
	}
	blocks := []slack.Block{
		header(":rotating_light: Guardrail breached: " + b.Metric),
		section(fmt.Sprintf("*%s* in *%s*: %s is *%s* with `%s` than with the control `%s` (%s).",
			link(b.DashboardURL, b.Flag), b.Environment, metric, worse, b.Treatment, b.Control, tolerance)),
		fields(
			"*What regressed*\n"+metric+", "+better,
			fmt.Sprintf("*By how much*\n%s (mean %s → %s; n = %d vs %d)", effect, num(b.ControlMean), num(b.TreatmentMean), b.ControlN, b.TreatmentN),
			fmt.Sprintf("*Interval (%s always-valid)*\n[%s, %s], p = %s", level(b.Alpha), low, high, pval(b.PValue)),
			"*What was done*\n"+done,
			"*Flag owner*\n"+esc(b.Owner.Label()),
			"*What*\n"+what,
		),
	}
	if len(quality) > 0 {
		blocks = append(blocks, section(":warning: *Check the data*\n"+strings.Join(quality, "\n")))
	}
	if b.DashboardURL != "" {
		blocks = append(blocks, button("open_dashboard", "Open dashboard", b.DashboardURL))
	}
	blocks = append(blocks, contextLine(fmt.Sprintf("Guardrail %s · detected %s · Switchyard", b.GuardrailID, stamp(b.BreachedAt))))
	return Message{Text: text, Blocks: blocks}
}

func renderSRM(a alert.Alert, s *alert.SRM) Message {
	obs, exp := split(s.Observed, s.Expected)
	text := fmt.Sprintf("Sample ratio mismatch in experiment %s (%s): p = %s. Its results cannot be trusted until the cause is found.",
		s.Experiment, s.Environment, pval(s.PValue))
	blocks := []slack.Block{
		header(":warning: Sample ratio mismatch: " + s.Experiment),
		section(fmt.Sprintf("The traffic split of experiment *%s* (flag `%s`) in *%s* does not match its weights (p = %s). "+
			"Its results cannot be trusted until the cause is found: assignment bugs, bots, redirects that lose users.",
			link(s.DashboardURL, s.Experiment), s.Flag, s.Environment, pval(s.PValue))),
		fields(
			"*Observed units*\n"+strings.Join(obs, "\n"),
			"*Expected split*\n"+strings.Join(exp, "\n"),
			"*What was done*\nNothing: the experiment keeps running.",
			"*Flag owner*\n"+esc(s.Owner.Label()),
		),
	}
	if s.DashboardURL != "" {
		blocks = append(blocks, button("open_dashboard", "Open dashboard", s.DashboardURL))
	}
	blocks = append(blocks, contextLine(fmt.Sprintf("Experiment %s · checked %s · Switchyard", s.Experiment, stamp(a.At))))
	return Message{Text: text, Blocks: blocks}
}

// split lists each variation's units with their share, and its expected share.
func split(observed map[string]int64, expected map[string]float64) (obs, exp []string) {
	keys := make([]string, 0, len(expected))
	var total int64
	for k := range expected {
		keys = append(keys, k)
	}
	for _, n := range observed {
		total += n
	}
	sort.Strings(keys)
	for _, k := range keys {
		share := 0.0
		if total > 0 {
			share = float64(observed[k]) / float64(total)
		}
		obs = append(obs, fmt.Sprintf("`%s`: %d (%s)", k, observed[k], pct(share)))
		exp = append(exp, fmt.Sprintf("`%s`: %s", k, pct(expected[k])))
	}
	return obs, exp
}

func renderScheduled(a alert.Alert, s *alert.ScheduledFailed) Message {
	step := ""
	if s.Steps > 1 {
		step = fmt.Sprintf(" step %d of %d", s.Step, s.Steps)
	}
	rest := ""
	if s.Steps > s.Step {
		rest = " The remaining steps were cancelled."
	}
	// The reason quotes people's comments and names (the edits since the change was
	// scheduled), and the action may hold their values: escaped, so that text cannot
	// mention @channel or disguise a link.
	what, reason := esc(s.What), esc(s.Reason)
	text := fmt.Sprintf("Scheduled change #%d%s (%s) for %s in %s was not applied: %s",
		s.ChangeID, step, what, s.Flag, s.Environment, reason)
	blocks := []slack.Block{
		header(":x: Scheduled change not applied: " + s.Flag),
		section(fmt.Sprintf("Scheduled change *#%d*%s (%s) for *%s* in *%s* was not applied: %s. Nothing was changed.%s",
			s.ChangeID, step, what, link(s.DashboardURL, s.Flag), s.Environment, reason, rest)),
		fields("*Scheduled by*\n"+orNone(esc(s.ScheduledBy)), "*Flag owner*\n"+esc(s.Owner.Label())),
	}
	if s.DashboardURL != "" {
		blocks = append(blocks, button("open_dashboard", "Open flag", s.DashboardURL))
	}
	blocks = append(blocks, contextLine(fmt.Sprintf("Scheduled change %d · %s · Switchyard", s.ChangeID, stamp(a.At))))
	return Message{Text: text, Blocks: blocks}
}

func renderDigest(a alert.Alert, d *alert.Digest) Message {
	n := len(d.Flags)
	text := fmt.Sprintf("%d stale flags in %s", n, a.Project)
	if n == 1 {
		text = fmt.Sprintf("1 stale flag in %s", a.Project)
	}
	blocks := []slack.Block{
		header(":broom: " + text),
		section("These flags look finished: archive them (or tell Switchyard to ignore them) to keep the code and the rulesets lean."),
	}
	for i, f := range d.Flags {
		if i == maxDigestFlags {
			blocks = append(blocks, contextLine(fmt.Sprintf("…and %d more.", n-maxDigestFlags)))
			break
		}
		lines := []string{fmt.Sprintf("*`%s`* · owner: %s", f.Flag, esc(f.Owner.Label()))}
		for _, r := range f.Reasons {
			lines = append(lines, "• "+r)
		}
		blocks = append(blocks, section(strings.Join(lines, "\n")))
	}
	if d.DashboardURL != "" {
		blocks = append(blocks, button("open_report", "Open the stale-flag report", d.DashboardURL))
	}
	blocks = append(blocks, contextLine(fmt.Sprintf("Weekly digest · %s · Switchyard", stamp(a.At))))
	return Message{Text: text, Blocks: blocks}
}

func header(s string) slack.Block {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, alert.Truncate(s, 150), true, false))
}

func section(s string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, alert.Truncate(s, 3000), false, false), nil, nil)
}

func fields(fs ...string) slack.Block {
	objs := make([]*slack.TextBlockObject, len(fs))
	for i, f := range fs {
		objs[i] = slack.NewTextBlockObject(slack.MarkdownType, alert.Truncate(f, 2000), false, false)
	}
	return slack.NewSectionBlock(nil, objs, nil)
}

func button(actionID, label, url string) slack.Block {
	b := slack.NewButtonBlockElement(actionID, "", slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
	b.URL = url
	return slack.NewActionBlock("", b)
}

func contextLine(s string) slack.Block {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, s, false, false))
}

func link(url, label string) string {
	if url == "" {
		return "`" + label + "`"
	}
	return "<" + url + "|" + label + ">"
}

// esc escapes text from people (comments, names) for Slack's mrkdwn: &, < and > are its
// control characters (<!channel>, <url|label>), shown as themselves once escaped.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// pct formats a share or a magnitude: 0.051 → "5.1%", 0.0004 → "0.04%".
func pct(x float64) string {
	p := 100 * x
	switch a := math.Abs(p); {
	case a == 0:
		return "0%"
	case a < 0.1:
		return fmt.Sprintf("%.2g%%", p)
	case a < 10:
		return fmt.Sprintf("%.1f%%", p)
	}
	return fmt.Sprintf("%.0f%%", p)
}

// signedPct is pct with a sign: "+5.1%", "-0.3%".
func signedPct(x float64) string {
	if x >= 0 {
		return "+" + pct(x)
	}
	return "-" + pct(-x)
}

func pval(p float64) string {
	if p < 0.0001 {
		return fmt.Sprintf("%.1e", p)
	}
	return fmt.Sprintf("%.4f", p)
}

func num(x float64) string { return fmt.Sprintf("%.4g", x) }

func signedNum(x float64) string { return fmt.Sprintf("%+.4g", x) }

func level(alpha float64) string {
	if alpha <= 0 || alpha >= 1 {
		alpha = 0.05
	}
	return pct(1 - alpha)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "just now"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
