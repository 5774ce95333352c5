package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
)

func TestRenderEveryKind(t *testing.T) {
	at := time.Date(2026, 11, 25, 18, 11, 0, 0, time.UTC)
	many := make([]alert.DigestFlag, 45)
	for i := range many {
		many[i] = alert.DigestFlag{Flag: fmt.Sprintf("flag-%02d", i), Reasons: []string{"production: no evaluations for 30 days"}}
	}
	alertOnly := breachAlert()
	alertOnly.Breach.ActionTaken, alertOnly.Breach.Action = alert.ActionNone, "alert"
	doubtful := breachAlert()
	doubtful.Breach.SplitMismatch = &alert.SplitMismatch{PValue: 0.00002, Observed: map[string]int64{"off": 10212, "on": 9187},
		Expected: map[string]float64{"off": 0.5, "on": 0.5}}
	doubtful.Breach.MultipleExposures, doubtful.Breach.MultipleExposureShare = 412, 0.0208
	rollout := breachAlert()
	rollout.Breach.ActionTaken, rollout.Breach.Experiment, rollout.Breach.Direction, rollout.Breach.Effect = alert.ActionTurnOff, "", "increase", -0.031
	newError := breachAlert()
	b := newError.Breach
	b.Absolute, b.Effect, b.Interval, b.ControlMean, b.TreatmentMean = true, 0.0204, [2]float64{0.0113, 0.0295}, 0, 0.0204
	cases := []struct {
		name     string
		a        alert.Alert
		text     string
		blocks   int
		contains []string
	}{
		{name: "alert-only breach", a: alertOnly,
			text:   "Guardrail breached: error-rate is 5.1% worse with new-checkout=on in production (tolerance 2.0%). No change was made.",
			blocks: 5, contains: []string{"Alert only: nothing was changed"}},
		{name: "breach on doubtful data says so", a: doubtful,
			text: "Guardrail breached: error-rate is 5.1% worse with new-checkout=on in production (tolerance 2.0%). Rolled back: new-checkout now serves off." +
				" Warning: sample ratio mismatch (p = 2.0e-05). Warning: 2.1% of units saw several variations.",
			blocks: 6, contains: []string{":warning: *Check the data*", "*Sample ratio mismatch* (p = 2.0e-05): units `off`: 10212 (53%), `on`: 9187 (47%), expected `off`: 50%, `on`: 50%",
				"*Multiple exposures*: 412 units (2.1%) saw several variations"}},
		{name: "breach from a control mean of 0 reads as a difference of means", a: newError,
			text:   "Guardrail breached: error-rate is 0.0204 per unit worse with new-checkout=on in production (from a control mean of 0, beyond any tolerance). Rolled back: new-checkout now serves off.",
			blocks: 5, contains: []string{"+0.0204 per unit, absolute: the control's mean is 0 (mean 0 → 0.0204", "[+0.0113, +0.0295]"}},
		{name: "rollout breach turned off", a: rollout,
			text:   "Guardrail breached: error-rate is 3.1% worse with new-checkout=on in production (tolerance 2.0%). Rolled back: new-checkout was turned off.",
			blocks: 5, contains: []string{"*What*\\nRollout", "-3.1% relative", "higher is better"}},
		{name: "sample ratio mismatch", a: alert.Alert{Kind: alert.KindSRM, Project: "shop", At: at, SRM: &alert.SRM{Environment: "production",
			Flag: "search", Experiment: "search-q4", PValue: 0.00002, Observed: map[string]int64{"off": 1000, "on": 1300},
			Expected: map[string]float64{"off": 0.5, "on": 0.5}, Owner: alert.Owner{Email: "bob@example.com"}}},
			text:   "Sample ratio mismatch in experiment search-q4 (production): p = 2.0e-05. Its results cannot be trusted until the cause is found.",
			blocks: 4, contains: []string{"`off`: 1000 (43%)", "`on`: 1300 (57%)", "`on`: 50%", "bob@example.com", "Nothing: the experiment keeps running."}},
		{name: "scheduled change failed", a: alert.Alert{Kind: alert.KindScheduledChangeFailed, Project: "shop", At: at, ScheduledFailed: &alert.ScheduledFailed{
			ChangeID: 42, Step: 2, Steps: 4, Environment: "production", Flag: "checkout", What: "turn on, rollout on 25%, off 75%",
			Reason: "the flag was edited since the change was scheduled (the change was based on version 7)", Edited: true, ScheduledBy: "Alice",
			DashboardURL: "https://dash.example.com/p/shop/flags/checkout?environment=production"}},
			text:   "Scheduled change #42 step 2 of 4 (turn on, rollout on 25%, off 75%) for checkout in production was not applied: the flag was edited since the change was scheduled (the change was based on version 7)",
			blocks: 5, contains: []string{"The remaining steps were cancelled.", "*Scheduled by*\\nAlice", "Open flag"}},
		{name: "digest of 45 flags", a: alert.Alert{Kind: alert.KindStaleDigest, Project: "shop", At: at, Digest: &alert.Digest{Flags: many}},
			text: "45 stale flags in shop", blocks: 2 + 40 + 1 + 1, contains: []string{"…and 5 more.", "flag-39"}},
		{name: "digest of one flag", a: alert.Alert{Kind: alert.KindStaleDigest, Project: "shop", At: at, Digest: &alert.Digest{Flags: many[:1]}},
			text: "1 stale flag in shop", blocks: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Render(tc.a)
			if m.Text != tc.text {
				t.Errorf("text:\n got %q\nwant %q", m.Text, tc.text)
			}
			if len(m.Blocks) != tc.blocks {
				t.Errorf("%d blocks, want %d", len(m.Blocks), tc.blocks)
			}
			raw, err := json.Marshal(m.Blocks)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.contains {
				if !strings.Contains(string(raw), want) {
					t.Errorf("blocks lack %q:\n%s", want, raw)
				}
			}
			if len(raw) > 40000 {
				t.Errorf("message too large for Slack: %d bytes", len(raw))
			}
		})
	}
}

// TestPeoplesTextCannotMentionOrLink: comments and names quoted in an alert (a scheduled step's
// reason names the edits since it was scheduled, with their comments) are escaped for Slack's
// mrkdwn, so a comment cannot ping the channel or disguise a link; a cut never splits a
// character.
func TestPeoplesTextCannotMentionOrLink(t *testing.T) {
	evil := `<!channel> ramp <https://evil.example|Open flag> & more`
	m := Render(alert.Alert{Kind: alert.KindScheduledChangeFailed, Project: "shop", At: time.Now(), ScheduledFailed: &alert.ScheduledFailed{
		ChangeID: 7, Step: 1, Steps: 1, Environment: "production", Flag: "checkout", What: "turn on",
		Reason:      "the flag was edited since the change was scheduled (the change was based on version 3): version 4, an edit by token <@U123> (\"" + evil + "\")",
		ScheduledBy: "<!here>", Owner: alert.Owner{Name: "Eve <!everyone>", Email: "eve@example.com"}}})
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m.Blocks); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"text": m.Text, "blocks": buf.String()} {
		for _, bad := range []string{"<!channel>", "<!here>", "<!everyone>", "<@U123>", "<https://evil.example"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s carries %q unescaped:\n%s", name, bad, s)
			}
		}
		if !strings.Contains(s, "&lt;!channel&gt; ramp &lt;https://evil.example|Open flag&gt; &amp; more") {
			t.Errorf("%s lacks the escaped comment:\n%s", name, s)
		}
	}
	if got := alert.Truncate(strings.Repeat("é", 10), 5); got != "éééé…" {
		t.Errorf("truncate: %q", got)
	}
}
