package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/slack/slacktest"
)

const token = "xoxb-test-token"

func breachAlert() alert.Alert {
	at := time.Date(2026, 11, 25, 18, 11, 0, 0, time.UTC)
	return alert.Alert{
		Key: "guardrail:g-1:1700000000", Kind: alert.KindGuardrailBreach, Project: "shop", Channel: "C-ONCALL", At: at,
		Breach: &alert.Breach{
			GuardrailID: "g-1", Environment: "production", Flag: "new-checkout", Experiment: "new-checkout-q4",
			Metric: "error-rate", MetricName: "Error rate", Direction: "decrease", Tolerance: 0.02,
			Action: "rollback", ActionTaken: alert.ActionServeControl, Control: "off", Treatment: "on",
			Effect: 0.051, Interval: [2]float64{0.031, 0.071}, PValue: 0.0004, Alpha: 0.05,
			ControlN: 10212, TreatmentN: 10187, ControlMean: 0.02, TreatmentMean: 0.02102,
			Owner: alert.Owner{Name: "Alice", Email: "alice@example.com"}, DashboardURL: "https://switchyard.example.com/p/shop/experiments/new-checkout-q4",
			BreachedAt: at,
		},
	}
}

// recorder replaces the client's sleep: it records the waits instead of waiting.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	return nil
}

func newClient(srv *slacktest.Server, rec *recorder) *Client {
	cfg := Config{Token: token, APIURL: srv.URL}
	if rec != nil {
		cfg.Sleep = rec.sleep
	}
	return New(cfg)
}

// TestSendPostsTheExactPayload: chat.postMessage carries the channel, the notification text,
// the Block Kit layout and the alert key as metadata — exactly these.
func TestSendPostsTheExactPayload(t *testing.T) {
	srv := slacktest.New(token, "C-ONCALL")
	defer srv.Close()
	ts, err := newClient(srv, nil).Send(context.Background(), breachAlert())
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages("C-ONCALL")
	if len(msgs) != 1 || msgs[0].TS != ts {
		t.Fatalf("messages: %+v (ts %q)", msgs, ts)
	}
	calls := srv.Calls("chat.postMessage")
	if len(calls) != 1 || calls[0].Form.Get("token") != token || calls[0].Form.Get("channel") != "C-ONCALL" {
		t.Fatalf("calls: %+v", calls)
	}
	wantText := "Guardrail breached: error-rate is 5.1% worse with new-checkout=on in production (tolerance 2.0%). Rolled back: new-checkout now serves off."
	if msgs[0].Text != wantText {
		t.Errorf("text:\n got %q\nwant %q", msgs[0].Text, wantText)
	}
	wantBlocks := `[
 {"type":"header","text":{"type":"plain_text","text":":rotating_light: Guardrail breached: error-rate","emoji":true}},
 {"type":"section","text":{"type":"mrkdwn","text":"*\u003chttps://switchyard.example.com/p/shop/experiments/new-checkout-q4|new-checkout\u003e* in *production*: Error rate (` + "`error-rate`" + `) is *5.1% worse* with ` + "`on`" + ` than with the control ` + "`off`" + ` (tolerance 2.0%)."}},
 {"type":"section","fields":[
   {"type":"mrkdwn","text":"*What regressed*\nError rate (` + "`error-rate`" + `), lower is better"},
   {"type":"mrkdwn","text":"*By how much*\n+5.1% relative (mean 0.02 → 0.02102; n = 10212 vs 10187)"},
   {"type":"mrkdwn","text":"*Interval (95% always-valid)*\n[+3.1%, +7.1%], p = 0.0004"},
   {"type":"mrkdwn","text":"*What was done*\nRolled back automatically: ` + "`new-checkout`" + ` now serves the control ` + "`off`" + ` to everyone in production."},
   {"type":"mrkdwn","text":"*Flag owner*\nAlice &lt;alice@example.com&gt;"},
   {"type":"mrkdwn","text":"*What*\nExperiment ` + "`new-checkout-q4`" + `"}]},
 {"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Open dashboard","emoji":false},"action_id":"open_dashboard","url":"https://switchyard.example.com/p/shop/experiments/new-checkout-q4"}]},
 {"type":"context","elements":[{"type":"mrkdwn","text":"Guardrail g-1 · detected 2026-11-25 18:11 UTC · Switchyard"}]}
]`
	assertJSON(t, "blocks", msgs[0].Blocks, wantBlocks)
	assertJSON(t, "metadata", msgs[0].Metadata, `{"event_type":"switchyard_alert","event_payload":{"alert_key":"guardrail:g-1:1700000000"}}`)
}

func assertJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: the expectation does not parse: %v", what, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

// TestRetries: 429 answers are retried, waiting what Retry-After says (capped); a 5xx may come
// after the message was posted, so it is left to the outbox (which looks before posting again);
// Slack's own error codes are not retried, and permanent ones are marked so the outbox gives up
// on them.
func TestRetries(t *testing.T) {
	cases := []struct {
		name      string
		fail      []slacktest.Failure
		token     string
		channel   string
		wantCalls int
		wantWaits []time.Duration
		wantErr   bool
		permanent bool
	}{
		{name: "429 honours Retry-After", fail: []slacktest.Failure{{Status: 429, RetryAfter: "3"}},
			wantCalls: 2, wantWaits: []time.Duration{3 * time.Second}},
		{name: "503 is not posted again here", fail: []slacktest.Failure{{Status: 503, RetryAfter: "2"}},
			wantCalls: 1, wantErr: true},
		{name: "500 is not posted again here", fail: []slacktest.Failure{{Status: 500}},
			wantCalls: 1, wantErr: true},
		{name: "Retry-After is capped", fail: []slacktest.Failure{{Status: 429, RetryAfter: "3600"}},
			wantCalls: 2, wantWaits: []time.Duration{time.Minute}},
		{name: "gives up after four attempts", fail: []slacktest.Failure{{Status: 429, RetryAfter: "1"}, {Status: 429, RetryAfter: "1"}, {Status: 429, RetryAfter: "1"}, {Status: 429, RetryAfter: "1"}},
			wantCalls: 4, wantWaits: []time.Duration{time.Second, time.Second, time.Second}, wantErr: true},
		{name: "ratelimited error code is retried by the outbox, not here", fail: []slacktest.Failure{{Error: "ratelimited"}},
			wantCalls: 1, wantErr: true},
		{name: "unknown channel is permanent", channel: "C-NOPE", wantCalls: 1, wantErr: true, permanent: true},
		{name: "bad token is permanent", token: "xoxb-wrong", wantCalls: 1, wantErr: true, permanent: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := slacktest.New(token, "C-ONCALL")
			defer srv.Close()
			srv.FailNext("chat.postMessage", tc.fail...)
			rec := &recorder{}
			cfg := Config{Token: token, APIURL: srv.URL, Sleep: rec.sleep}
			if tc.token != "" {
				cfg.Token = tc.token
			}
			a := breachAlert()
			if tc.channel != "" {
				a.Channel = tc.channel
			}
			_, err := New(cfg).Send(context.Background(), a)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := errors.Is(err, alert.ErrPermanent); got != tc.permanent {
				t.Fatalf("permanent = %v (%v), want %v", got, err, tc.permanent)
			}
			if n := len(srv.Calls("chat.postMessage")); n != tc.wantCalls {
				t.Fatalf("calls = %d, want %d", n, tc.wantCalls)
			}
			if len(rec.waits) != len(tc.wantWaits) {
				t.Fatalf("waits = %v, want %v", rec.waits, tc.wantWaits)
			}
			for i := range rec.waits {
				if rec.waits[i] != tc.wantWaits[i] {
					t.Fatalf("waits = %v, want %v", rec.waits, tc.wantWaits)
				}
			}
			wantMsgs := 0
			if !tc.wantErr {
				wantMsgs = 1
			}
			if n := len(srv.Messages("")); n != wantMsgs {
				t.Fatalf("messages = %d, want %d", n, wantMsgs)
			}
		})
	}
}

// TestRetryAfterIsHonouredInRealTime: with the real clock, a 429 with Retry-After: 1 delays
// the retry by at least a second.
func TestRetryAfterIsHonouredInRealTime(t *testing.T) {
	srv := slacktest.New(token, "C-ONCALL")
	defer srv.Close()
	srv.FailNext("chat.postMessage", slacktest.Failure{Status: 429, RetryAfter: "1"})
	start := time.Now()
	if _, err := newClient(srv, nil).Send(context.Background(), breachAlert()); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls("chat.postMessage")
	if len(calls) != 2 {
		t.Fatalf("calls: %d", len(calls))
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < time.Second || time.Since(start) < time.Second {
		t.Fatalf("retried after %s, want >= 1s", gap)
	}
}

// TestFindLocatesAPostedAlertByItsKey: an interrupted delivery finds its message through the
// metadata in conversations.history, across pages, and only its own.
func TestFindLocatesAPostedAlertByItsKey(t *testing.T) {
	srv := slacktest.New(token, "C-ONCALL")
	defer srv.Close()
	c := newClient(srv, nil)
	a := breachAlert()
	ts, err := c.Send(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 450; i++ { // three pages of newer chatter after it
		srv.Inject(slacktest.Message{Channel: "C-ONCALL", Text: "chatter"})
	}
	since := time.Now().Add(-time.Hour)
	// Reading history changes nothing, so a 5xx is retried at once.
	srv.FailNext("conversations.history", slacktest.Failure{Status: 503, RetryAfter: "0"})
	got, found, err := c.Find(context.Background(), a, since)
	if err != nil || !found || got != ts {
		t.Fatalf("Find = %q, %v, %v; want %q", got, found, err, ts)
	}
	if n := len(srv.Calls("conversations.history")); n != 4 {
		t.Fatalf("history calls = %d, want 3 pages and a retry", n)
	}
	other := a
	other.Key = "guardrail:g-2:1"
	if _, found, err := c.Find(context.Background(), other, since); err != nil || found {
		t.Fatalf("another key was found: %v %v", found, err)
	}
	if _, found, _ := c.Find(context.Background(), a, time.Now().Add(time.Hour)); found {
		t.Fatal("a message older than since was found")
	}
}

// TestWithoutATokenNothingIsSent: an unconfigured client reports ErrNotConfigured.
func TestWithoutATokenNothingIsSent(t *testing.T) {
	srv := slacktest.New(token)
	defer srv.Close()
	_, err := New(Config{APIURL: srv.URL}).Send(context.Background(), breachAlert())
	if !errors.Is(err, alert.ErrNotConfigured) || len(srv.Calls("")) != 0 {
		t.Fatalf("err %v, calls %d", err, len(srv.Calls("")))
	}
}
