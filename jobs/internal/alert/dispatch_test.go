package alert_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/slack"
	"github.com/switchyard-io/switchyard/jobs/internal/slack/slacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

const token = "xoxb-dispatch"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	store *postgres.Store
	slack *slacktest.Server
	clock *clock
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, testenv.PostgresDB(t), 8, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	st.DefaultChannel = "C-ALERTS"
	clk := &clock{t: time.Now().UTC()}
	st.SetClock(clk.now)
	srv := slacktest.New(token, "C-ALERTS")
	t.Cleanup(srv.Close)
	return fixture{store: st, slack: srv, clock: clk}
}

func (f fixture) dispatcher(name, tok string) *alert.Dispatcher {
	c := slack.New(slack.Config{Token: tok, APIURL: f.slack.URL, Sleep: func(context.Context, time.Duration) error { return nil }})
	d := alert.NewDispatcher(f.store, c, slog.New(slog.DiscardHandler), name, nil)
	d.Now = f.clock.now
	return d
}

func srmAlert(i int) alert.Alert {
	return alert.Alert{Key: fmt.Sprintf("srm:env:exp-%d", i), Kind: alert.KindSRM, Project: "shop",
		SRM: &alert.SRM{Environment: "production", Flag: "f", Experiment: fmt.Sprintf("exp-%d", i), PValue: 1e-5,
			Observed: map[string]int64{"a": 1000, "b": 1200}, Expected: map[string]float64{"a": 0.5, "b": 0.5}}}
}

// TestTwoReplicasPostEachAlertOnce: two dispatchers draining the same outbox concurrently
// post every alert exactly once.
func TestTwoReplicasPostEachAlertOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := 0; i < 12; i++ {
		for range 2 { // offered twice, as two sweeps would
			if _, err := f.store.Enqueue(ctx, srmAlert(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	for _, name := range []string{"replica-a", "replica-b"} {
		d := f.dispatcher(name, token)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				more, err := d.DeliverOne(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if !more {
					return
				}
			}
		}()
	}
	wg.Wait()
	msgs := f.slack.Messages("C-ALERTS")
	if len(msgs) != 12 {
		t.Fatalf("%d messages, want 12", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		_, p := m.MetadataPayload()
		k, _ := p["alert_key"].(string)
		if seen[k] {
			t.Fatalf("alert %s posted twice", k)
		}
		seen[k] = true
	}
	recs, _ := f.store.Alerts(ctx, "shop", 0)
	for _, r := range recs {
		if r.Status != "sent" || r.Ref == "" {
			t.Fatalf("alert %s: %s %q", r.Key, r.Status, r.Ref)
		}
	}
}

// TestInterruptedDeliveryIsNotPostedTwice: a sender that posted and died before recording it
// leaves a lease that expires; the next dispatcher finds the message by its metadata and
// records it instead of posting again.
func TestInterruptedDeliveryIsNotPostedTwice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := srmAlert(1)
	if _, err := f.store.Enqueue(ctx, a); err != nil {
		t.Fatal(err)
	}
	// The first replica claims, posts, and dies.
	d, ok, err := f.store.Claim(ctx, "replica-a", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	c := slack.New(slack.Config{Token: token, APIURL: f.slack.URL})
	ts, err := c.Send(ctx, d.Alert)
	if err != nil {
		t.Fatal(err)
	}
	// Before the lease expires nobody touches it.
	b := f.dispatcher("replica-b", token)
	if more, err := b.DeliverOne(ctx); more || err != nil {
		t.Fatalf("claimed a leased alert: %v %v", more, err)
	}
	f.clock.add(3 * time.Minute)
	if more, err := b.DeliverOne(ctx); !more || err != nil {
		t.Fatalf("recovery: %v %v", more, err)
	}
	if n := len(f.slack.Messages("")); n != 1 {
		t.Fatalf("%d messages after recovery, want 1", n)
	}
	if n := len(f.slack.Calls("conversations.history")); n != 1 {
		t.Fatalf("history calls: %d", n)
	}
	recs, _ := f.store.Alerts(ctx, "shop", 0)
	if recs[0].Status != "sent" || recs[0].Ref != ts {
		t.Fatalf("record: %+v (ts %s)", recs[0], ts)
	}
}

// TestFailedPostThatWasPostedIsNotPostedTwice: Slack may answer a post with a 5xx (or time
// out) after posting it. Such an answer is not retried blindly: the alert's next attempt finds
// the message by its metadata and records it instead of posting it again.
func TestFailedPostThatWasPostedIsNotPostedTwice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.Enqueue(ctx, srmAlert(1)); err != nil {
		t.Fatal(err)
	}
	f.slack.FailNext("chat.postMessage", slacktest.Failure{Status: 503, AfterPosting: true})
	d := f.dispatcher("r", token)
	for i := 0; i < 3; i++ {
		if _, err := d.DeliverOne(ctx); err != nil {
			t.Fatal(err)
		}
		f.clock.add(time.Minute)
	}
	if n := len(f.slack.Messages("")); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	recs, _ := f.store.Alerts(ctx, "shop", 0)
	if recs[0].Status != "sent" || recs[0].Ref != f.slack.Messages("")[0].TS {
		t.Fatalf("record: %+v", recs[0])
	}
}

// cancelAfterSend is a Sender that cancels the delivery's context once the message is posted:
// the service shutting down in the middle of a delivery.
type cancelAfterSend struct {
	alert.Sender
	cancel context.CancelFunc
}

func (c cancelAfterSend) Send(ctx context.Context, a alert.Alert) (string, error) {
	ref, err := c.Sender.Send(ctx, a)
	c.cancel()
	return ref, err
}

// TestShutdownDuringDeliveryStillRecordsIt: a message posted while the service shuts down is
// recorded as sent, not left "sending" until its lease runs out.
func TestShutdownDuringDeliveryStillRecordsIt(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.Enqueue(context.Background(), srmAlert(1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := f.dispatcher("r", token)
	d.Sender = cancelAfterSend{Sender: d.Sender, cancel: cancel}
	if _, err := d.DeliverOne(ctx); err != nil {
		t.Fatalf("delivery during shutdown: %v", err)
	}
	recs, _ := f.store.Alerts(context.Background(), "shop", 0)
	if len(recs) != 1 || recs[0].Status != "sent" || recs[0].Ref == "" || len(f.slack.Messages("")) != 1 {
		t.Fatalf("records %+v after %d messages; want one, sent", recs, len(f.slack.Messages("")))
	}
}

// TestDeliveryOutcomes: transient failures are retried later, permanent ones and a missing
// token end the alert at once.
func TestDeliveryOutcomes(t *testing.T) {
	cases := []struct {
		name       string
		token      string
		channel    string
		fail       []slacktest.Failure
		wantStatus string
		wantCalls  int
	}{
		{name: "sent", token: token, wantStatus: "sent", wantCalls: 1},
		{name: "slack down is retried later", token: token, wantStatus: "pending", wantCalls: 1,
			fail: []slacktest.Failure{{Status: 503}}},
		{name: "unknown channel fails", token: token, channel: "C-GONE", wantStatus: "failed", wantCalls: 1},
		{name: "no token skips", token: "", wantStatus: "skipped", wantCalls: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			a := srmAlert(1)
			a.Channel = tc.channel
			if _, err := f.store.Enqueue(ctx, a); err != nil {
				t.Fatal(err)
			}
			f.slack.FailNext("chat.postMessage", tc.fail...)
			if more, err := f.dispatcher("r", tc.token).DeliverOne(ctx); !more || err != nil {
				t.Fatal(more, err)
			}
			recs, _ := f.store.Alerts(ctx, "shop", 0)
			if recs[0].Status != tc.wantStatus {
				t.Fatalf("status %s (%s), want %s", recs[0].Status, recs[0].LastError, tc.wantStatus)
			}
			if n := len(f.slack.Calls("chat.postMessage")); n != tc.wantCalls {
				t.Fatalf("calls %d, want %d", n, tc.wantCalls)
			}
			if tc.wantStatus == "pending" {
				// Not due again at once; due after the backoff.
				if more, _ := f.dispatcher("r", tc.token).DeliverOne(ctx); more {
					t.Fatal("retried before the backoff")
				}
				f.clock.add(10 * time.Second)
				if more, err := f.dispatcher("r", tc.token).DeliverOne(ctx); !more || err != nil {
					t.Fatal("not retried after the backoff", err)
				}
				if recs, _ := f.store.Alerts(ctx, "shop", 0); recs[0].Status != "sent" || recs[0].Attempts != 2 {
					t.Fatalf("after retry: %+v", recs[0])
				}
			}
		})
	}
}
