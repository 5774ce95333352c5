package itest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/ingest/internal/app"
	"github.com/switchyard-io/switchyard/ingest/internal/collector"
	"github.com/switchyard-io/switchyard/ingest/internal/event"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestOversizedEventIsRejectedNotRetried sends a batch holding a valid exposure and a summary
// far over the event size limit (its JSON is bigger than a Kafka record may be): the summary
// is rejected as event_too_large and dead-lettered (cut to its first MaxDeadLetterValue bytes), the
// exposure is accepted, and the answer is 202 — not a 503 that the SDK would retry forever.
func TestOversizedEventIsRejectedNotRetried(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	cfg := s.cfg
	cfg.ProduceTimeout = 3 * time.Second
	svc := start(t, cfg, app.Options{})

	counters := make([]map[string]any, 0, event.MaxCounters)
	for i := 0; i < event.MaxCounters; i++ {
		counters = append(counters, map[string]any{"flag_key": fmt.Sprintf("flag-%0200d", i), "variation_key": "on", "flag_version": 1, "count": 1})
	}
	big := summary(counters...)
	body, err := json.Marshal([]any{exposure("u1", "f", "on", ""), big})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) <= 1<<20 {
		t.Fatalf("test body of %d bytes is not over a Kafka record's 1 MiB", len(body))
	}
	r := post(t, svc.URL, "k", "application/json", body, true)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.Status, r.Body)
	}
	acc, rej := r.result(t)
	if acc != 1 || len(rej) != 1 || rej[string(event.ReasonEventTooLarge)] != 1 {
		t.Fatalf("response %s, want 1 accepted and 1 event_too_large", r.Body)
	}
	sent, _ := json.Marshal(big)
	dl := s.readDLQ(t, 1)
	if dl[0].reason != string(event.ReasonEventTooLarge) || len(dl[0].value) != collector.MaxDeadLetterValue ||
		!bytes.HasPrefix(sent, dl[0].value) {
		t.Fatalf("dead letter: reason %q, %d bytes, starting %.60q", dl[0].reason, len(dl[0].value), dl[0].value)
	}
	s.waitDistinct(t, "exposures", 1, 20*time.Second)
}

// TestSummaryWindowsStayWithinTheSkewBound sends summaries whose windows start in many different
// months of the past (any client can): their starts are clamped into the skew bound like event
// times, so one writer batch never spans more than a few monthly partitions. Current ClickHouse
// refuses an INSERT block touching over 100 partitions (max_partitions_per_insert_block), and the
// writer would retry that batch forever, stalling its partitions.
func TestSummaryWindowsStayWithinTheSkewBound(t *testing.T) {
	s := newStack(t)
	s.publishKeys(t, "env-a", 1, sdkKey{raw: "k", kind: ruleset.KeyServer})
	svc := start(t, s.cfg, app.Options{})
	const n = 120
	now := time.Now()
	var events []ev
	for i := 0; i < n; i++ {
		e := summary(map[string]any{"flag_key": "f", "variation_key": "on", "flag_version": 1, "count": 1})
		e["start"] = now.AddDate(0, -i-1, 0).UnixMilli()
		events = append(events, e)
	}
	sendAll(t, svc.URL, "k", events, n, 30*time.Second)
	s.waitDistinct(t, "evaluation_summaries", n, 30*time.Second)
	oldest := now.Add(-s.cfg.ClockSkewPast - time.Minute).Unix()
	if got := s.count(t, "SELECT count() FROM evaluation_summaries WHERE window_start < toDateTime(?)", oldest); got != 0 {
		t.Fatalf("%d summaries stored with a window starting before the skew bound", got)
	}
	if got := s.count(t, "SELECT count() FROM evaluation_summaries WHERE clamped = 1"); got != n {
		t.Fatalf("%d of %d summaries flagged clamped", got, n)
	}
	if got := s.count(t, "SELECT uniqExact(toYYYYMM(window_start)) FROM evaluation_summaries"); got > 2 {
		t.Fatalf("summaries spread over %d monthly partitions", got)
	}
}
