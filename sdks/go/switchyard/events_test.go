package switchyard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// fakeClock is a settable clock for dedup windows.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventsClient returns a TestData-fed client sending to collector, flushing only when asked.
func eventsClient(t *testing.T, collector *fakeCollector, events switchyard.EventsConfig, now func() time.Time) (*switchyard.Client, *switchyard.TestData) {
	t.Helper()
	td := switchyard.NewTestData()
	if events.FlushInterval == 0 {
		events.FlushInterval = time.Hour
	}
	if events.InitialBackoff == 0 {
		events.InitialBackoff, events.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	c, err := switchyard.New(switchyard.Config{SDKKey: sdkKey, EventsURL: collector.server.URL, DataSource: td, Events: events, Now: now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, td
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestExposureToANewExperimentIsNotDeduplicated: a context served a variation before an
// experiment started on the flag, and the same variation by the experiment's rollout after, is
// exposed again at once, with the experiment's key (an experiment's units are the exposures
// that carry its key; waiting out the dedup window would delay its control group only).
func TestExposureToANewExperimentIsNotDeduplicated(t *testing.T) {
	collector := newFakeCollector(t)
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	c, td := eventsClient(t, collector, switchyard.EventsConfig{DedupWindow: time.Hour}, clock.Now)
	flag := ruleset.Flag{
		Key: "checkout", Kind: ruleset.KindBoolean, Version: 1, On: true,
		Variations:  []ruleset.Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
		Fallthrough: ruleset.Serve{Variation: "off"},
	}
	td.SetFlag(flag)
	c.Bool(alice, "checkout", false)
	flag.Version = 2
	flag.Fallthrough = ruleset.Serve{Rollout: &ruleset.Rollout{ExperimentKey: "checkout-q4",
		Variations: []ruleset.WeightedVariation{{Variation: "off", Weight: 100000}, {Variation: "on", Weight: 0}}}}
	td.SetFlag(flag)
	c.Bool(alice, "checkout", false)
	c.Bool(alice, "checkout", false) // the experiment's exposure is deduplicated like any other
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	exposures := collector.received("exposure")
	if len(exposures) != 2 || exposures[0]["experiment_key"] != nil || exposures[1]["experiment_key"] != "checkout-q4" ||
		exposures[1]["variation_key"] != "off" {
		t.Fatalf("exposures: %v", exposures)
	}
}

func TestExposuresAreDeduplicated(t *testing.T) {
	collector := newFakeCollector(t)
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	c, td := eventsClient(t, collector, switchyard.EventsConfig{DedupWindow: time.Hour}, clock.Now)
	td.SetFlag(ruleset.Flag{
		Key: "exp", Kind: ruleset.KindBoolean, Version: 4, On: true,
		Variations: []ruleset.Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
		Rules: []ruleset.Rule{{ID: "beta", Clauses: []ruleset.Clause{{Attribute: "beta", Op: ruleset.OpIn, Values: []any{true}}},
			Serve: ruleset.Serve{Rollout: &ruleset.Rollout{ExperimentKey: "exp-1", Variations: []ruleset.WeightedVariation{{Variation: "on", Weight: 100000}, {Variation: "off", Weight: 0}}}}}},
		Fallthrough: ruleset.Serve{Variation: "off"},
	})
	beta := switchyard.NewContext("alice", switchyard.Attr("beta", true))
	betaEvaluations := 0
	evalBeta := func() {
		betaEvaluations++
		c.Bool(beta, "exp", false)
	}
	for range 100 {
		evalBeta() // one exposure: alice x exp x on
	}
	c.Bool(alice, "exp", false)                        // another variation: a second exposure
	c.Bool(switchyard.NewContext("bob"), "exp", false) // another context: a third
	c.Bool(alice, "missing", false)                    // fallback: no exposure, only a summary count
	if s := c.EventStats(); s.Queued != 3 || s.Deduplicated != 99 {
		t.Errorf("stats = %+v, want 3 queued and 99 deduplicated", s)
	}
	// The dedup table rotates at flush time, once per window: an exposure is not repeated within
	// the window, and is repeated after one to two windows.
	flush := func() {
		if err := c.FlushAndWait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(59 * time.Minute)
	flush()
	evalBeta()
	clock.Advance(2 * time.Minute) // one window: the exposure moves to the previous generation
	flush()
	evalBeta()
	if s := c.EventStats(); s.Queued != 0 || s.Deduplicated != 101 {
		t.Errorf("inside two windows: stats = %+v", s)
	}
	clock.Advance(61 * time.Minute) // a second window: forgotten
	flush()
	evalBeta()
	if s := c.EventStats(); s.Queued != 1 {
		t.Errorf("after two windows: stats = %+v, want the exposure queued again", s)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	exposures := collector.received("exposure")
	if len(exposures) != 4 {
		t.Fatalf("%d exposures: %v", len(exposures), exposures)
	}
	first := exposures[0]
	for field, want := range map[string]any{"flag_key": "exp", "variation_key": "on", "context_kind": "user", "context_key": "alice",
		"flag_version": 4.0, "reason": "SPLIT", "rule_id": "beta", "experiment_key": "exp-1", "timestamp": 1_700_000_000_000.0} {
		if first[field] != want {
			t.Errorf("exposure %s = %v, want %v", field, first[field], want)
		}
	}
	if second := exposures[1]; second["variation_key"] != "off" || second["experiment_key"] != nil || second["reason"] != "DEFAULT" {
		t.Errorf("second exposure = %v", second)
	}
	ids := map[any]bool{}
	for _, e := range collector.received("") {
		id, _ := e["event_id"].(string)
		if !uuidV7.MatchString(id) || ids[id] {
			t.Errorf("event_id %q is not a fresh UUIDv7", id)
		}
		ids[id] = true
	}
	// Every FlushAndWait and Close sends the summary of the counts since the previous one.
	summaries := collector.received("summary")
	if len(summaries) != 4 {
		t.Fatalf("%d summaries", len(summaries))
	}
	counts := map[string]float64{}
	for _, s := range summaries {
		if s["start"].(float64) > s["end"].(float64) {
			t.Errorf("summary window %v..%v", s["start"], s["end"])
		}
		for _, raw := range s["counters"].([]any) {
			ctr := raw.(map[string]any)
			counts[ctr["flag_key"].(string)+"/"+ctr["variation_key"].(string)] += ctr["count"].(float64)
		}
	}
	if want := map[string]float64{"exp/on": float64(betaEvaluations), "exp/off": 2, "missing/": 1}; !equalCounts(counts, want) {
		t.Errorf("summary counters = %v, want %v", counts, want)
	}
	if collector.gzipped.Load() == 0 || !collector.authOK.Load() {
		t.Error("events must be gzipped and carry the SDK key")
	}
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestExposureAttributedToTheBucketedKind(t *testing.T) {
	collector := newFakeCollector(t)
	c, td := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true}, nil)
	td.SetFlag(ruleset.Flag{
		Key: "by-device", Kind: ruleset.KindBoolean, On: true,
		Variations:  []ruleset.Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
		Fallthrough: ruleset.Serve{Rollout: &ruleset.Rollout{ContextKind: "device", Variations: []ruleset.WeightedVariation{{Variation: "on", Weight: 100000}}}},
	})
	c.Bool(switchyard.NewMultiContext(alice, switchyard.NewKindContext("device", "d1")), "by-device", false)
	c.Track(switchyard.NewMultiContext(alice, switchyard.NewKindContext("device", "d1")), "purchase", 9.5)
	c.Close()
	exp := collector.received("exposure")
	if len(exp) != 1 || exp[0]["context_kind"] != "device" || exp[0]["context_key"] != "d1" {
		t.Errorf("exposure = %v, want it attributed to device d1", exp)
	}
	tracks := collector.received("track")
	var kinds []string
	for _, tr := range tracks {
		kinds = append(kinds, tr["context_kind"].(string))
		if tr["value"] != 9.5 || tr["event_key"] != "purchase" {
			t.Errorf("track = %v", tr)
		}
	}
	sort.Strings(kinds)
	if len(kinds) != 2 || kinds[0] != "device" || kinds[1] != "user" {
		t.Errorf("track kinds = %v, want one per kind", kinds)
	}
}

func TestTrack(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true}, nil)
	c.Track(alice, "checkout", 42.5)
	c.TrackEvent(alice, "signup", switchyard.TrackOptions{Properties: map[string]any{"plan": "pro", "seats": 3, "nested": map[string]any{"x": 1}}})
	c.Track(switchyard.NewContext(""), "invalid-context", 1) // dropped: no key
	c.Close()
	tracks := collector.received("track")
	if len(tracks) != 2 {
		t.Fatalf("tracks = %v", tracks)
	}
	if tracks[0]["value"] != 42.5 || tracks[0]["context_key"] != "alice" {
		t.Errorf("first track = %v", tracks[0])
	}
	props, _ := tracks[1]["properties"].(map[string]any)
	if _, hasValue := tracks[1]["value"]; hasValue || props["plan"] != "pro" || props["seats"] != 3.0 || props["nested"] != nil {
		t.Errorf("second track = %v", tracks[1])
	}
}

func TestFlushBySize(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{BatchSize: 10, DisableSummaries: true}, nil)
	for range 25 {
		c.Track(alice, "click", 1)
	}
	eventually(t, "two full batches without waiting for the interval", func() bool { return len(collector.received("track")) >= 20 })
	for i, body := range collector.requestBodies() {
		var batch []any
		_ = json.Unmarshal(body, &batch)
		if len(batch) > 10 {
			t.Errorf("request %d carried %d events, more than BatchSize", i, len(batch))
		}
	}
}

func TestFlushByInterval(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{FlushInterval: 10 * time.Millisecond}, nil)
	c.Track(alice, "tick", 1)
	eventually(t, "the interval flush", func() bool { return len(collector.received("track")) == 1 })
}

func TestDropOldestWhenFull(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{Capacity: 5, BatchSize: 100, DisableSummaries: true}, nil)
	for i := range 8 {
		c.Track(alice, "e", float64(i)) // never blocks: 0, 1 and 2 are pushed out
	}
	if s := c.EventStats(); s.Queued != 5 || s.Dropped != 3 {
		t.Errorf("stats = %+v, want 5 queued, 3 dropped", s)
	}
	c.Close()
	var values []float64
	for _, e := range collector.received("track") {
		values = append(values, e["value"].(float64))
	}
	if len(values) != 5 || values[0] != 3 || values[4] != 7 {
		t.Errorf("delivered values %v, want 3..7", values)
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	collector := newFakeCollector(t)
	clock := &fakeClock{t: time.Date(2026, 11, 25, 23, 59, 59, 0, time.UTC)}
	collector.respond = func(n int, w http.ResponseWriter) bool {
		clock.Advance(time.Second)
		if n <= 2 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}
		return false
	}
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true}, clock.Now)
	c.Track(alice, "retry-me", 1)
	c.Flush()
	eventually(t, "delivery on the third attempt", func() bool { return c.EventStats().Sent == 1 })
	if s := c.EventStats(); s.Sent != 1 || s.Failed != 0 || len(collector.received("track")) != 1 {
		t.Errorf("stats = %+v", s)
	}
	// Every attempt carried the same event, with the same id (the collector deduplicates on it).
	var ids []string
	for _, body := range collector.requestBodies() {
		var batch []map[string]any
		_ = json.Unmarshal(body, &batch)
		ids = append(ids, batch[0]["event_id"].(string))
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("event ids per attempt = %v", ids)
	}
	// Each attempt says when it was sent, by the SDK's clock (the collector corrects event
	// times for a wrong clock from it).
	start := time.Date(2026, 11, 25, 23, 59, 59, 0, time.UTC).UnixMilli()
	want := []string{strconv.FormatInt(start, 10), strconv.FormatInt(start+1000, 10), strconv.FormatInt(start+2000, 10)}
	if got := collector.sentAtHeaders(); !reflect.DeepEqual(got, want) {
		t.Errorf("X-Switchyard-Sent-At per attempt = %v, want %v", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	collector := newFakeCollector(t)
	collector.respond = func(n int, w http.ResponseWriter) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		if n == 2 {
			w.Header().Set("Retry-After", "3600") // capped by MaxRetryAfter
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true, MaxRetryAfter: 1500 * time.Millisecond}, nil)
	c.Track(alice, "slow-down", 1)
	c.Flush()
	eventually(t, "delivery after two Retry-After waits", func() bool { return len(collector.received("track")) == 1 })
	at := collector.attemptTimes()
	if gap := at[1].Sub(at[0]); gap < 900*time.Millisecond {
		t.Errorf("retried %v after a 429 asking for 1 s", gap)
	}
	if gap := at[2].Sub(at[1]); gap < 1400*time.Millisecond || gap > 4*time.Second {
		t.Errorf("retried %v after a 503 asking for an hour, capped at 1.5 s", gap)
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	collector := newFakeCollector(t)
	collector.respond = func(n int, w http.ResponseWriter) bool {
		http.Error(w, `{"error":{"code":"invalid_argument"}}`, http.StatusBadRequest)
		return true
	}
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true}, nil)
	c.Track(alice, "bad", 1)
	c.Flush()
	eventually(t, "the batch to be settled", func() bool { return c.EventStats().Failed == 1 })
	c.Close()
	if n := len(collector.attemptTimes()); n != 1 {
		t.Errorf("%d attempts for a 400, want 1", n)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	collector := newFakeCollector(t)
	collector.respond = func(n int, w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	}
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true, MaxAttempts: 3}, nil)
	c.Track(alice, "doomed", 1)
	c.Flush()
	eventually(t, "giving up", func() bool { return c.EventStats().Failed == 1 })
	if n := len(collector.attemptTimes()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestPartialAcceptance(t *testing.T) {
	collector := newFakeCollector(t)
	collector.respond = func(n int, w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":1,"rejected":{"invalid_timestamp":1}}`))
		return true
	}
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true}, nil)
	c.Track(alice, "a", 1)
	c.Track(alice, "b", 1)
	c.Close()
	if s := c.EventStats(); s.Sent != 1 || s.Failed != 1 {
		t.Errorf("stats = %+v, want 1 sent, 1 failed", s)
	}
}

func TestCloseFlushes(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{}, nil)
	c.Track(alice, "last-words", 1)
	c.Bool(alice, "f", false)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if len(collector.received("track")) != 1 || len(collector.received("summary")) != 1 {
		t.Errorf("after Close: %v", collector.received(""))
	}
}

func TestCloseRespectsItsDeadline(t *testing.T) {
	collector := newFakeCollector(t)
	release := make(chan struct{})
	collector.respond = func(n int, w http.ResponseWriter) bool {
		<-release // the collector hangs
		return false
	}
	defer close(release)
	td := switchyard.NewTestData()
	c, err := switchyard.New(switchyard.Config{SDKKey: sdkKey, EventsURL: collector.server.URL, DataSource: td, CloseTimeout: 100 * time.Millisecond, Logger: quiet,
		Events: switchyard.EventsConfig{FlushInterval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	c.Track(alice, "stuck", 1)
	start := time.Now()
	if err := c.Close(); err == nil {
		t.Error("Close reported success although nothing was delivered")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a 100 ms deadline", d)
	}
}

func TestEventsOffByDefaultWithTestData(t *testing.T) {
	td := switchyard.NewTestData()
	c, err := switchyard.New(switchyard.Config{DataSource: td, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Track(alice, "x", 1)
	if s := c.EventStats(); s != (switchyard.EventStats{}) {
		t.Errorf("events recorded without an events URL: %+v", s)
	}
}

// TestUnencodableEventIsDroppedAlone: a NaN or infinite value is not JSON; the event carrying it
// must not take the rest of its batch (other conversions, exposures) down with it. A non-finite
// property, or a string longer than the collector accepts (it would reject the whole event as
// too_long), is dropped like any other unsupported property.
func TestUnencodableEventIsDroppedAlone(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true}, nil)
	c.Track(alice, "before", 1)
	c.Track(alice, "revenue", math.NaN())
	c.TrackEvent(alice, "props", switchyard.TrackOptions{Properties: map[string]any{"ratio": math.Inf(1), "plan": "pro", "essay": strings.Repeat("é", 1025)}})
	c.Track(alice, "after", 2)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range collector.received("track") {
		keys = append(keys, e["event_key"].(string))
		if e["event_key"] == "props" && !reflect.DeepEqual(e["properties"], map[string]any{"plan": "pro"}) {
			t.Errorf("properties = %v, want the valid one only", e["properties"])
		}
	}
	if !reflect.DeepEqual(keys, []string{"before", "props", "after"}) {
		t.Errorf("delivered %v, want before, props, after", keys)
	}
	if s := c.EventStats(); s.Sent != 3 || s.Failed != 1 {
		t.Errorf("stats = %+v, want 3 sent, 1 failed", s)
	}
}

// TestBatchesStayUnderTheCollectorsBodyLimit: BatchSize counts events, but the collector refuses
// a whole request over its body limit (4 MiB by default) with 413, which is not retried; large
// events must be sent in more, smaller requests instead of being lost by the batch.
func TestBatchesStayUnderTheCollectorsBodyLimit(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{DisableSummaries: true, DisableGzip: true}, nil)
	props := map[string]any{}
	for i := range 50 {
		props[fmt.Sprintf("p%02d", i)] = strings.Repeat("x", 1000)
	}
	for range 100 { // ~5 MiB of JSON, under the default BatchSize of 500
		c.TrackEvent(alice, "big", switchyard.TrackOptions{Properties: props})
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if n := collector.tooLarge.Load(); n != 0 {
		t.Errorf("%d requests refused as too large", n)
	}
	if got := len(collector.received("track")); got != 100 {
		t.Errorf("delivered %d of 100 events (stats %+v)", got, c.EventStats())
	}
}

// TestLargeSummariesAreSplit: the collector rejects a summary with more than 10,000 counters
// (too_many_counters) or larger than 512 KiB (event_too_large); a service evaluating many flags
// in one window must send several summaries, with every count.
func TestLargeSummariesAreSplit(t *testing.T) {
	collector := newFakeCollector(t)
	c, _ := eventsClient(t, collector, switchyard.EventsConfig{}, nil)
	const flags = 12000
	for i := range flags {
		c.Bool(alice, fmt.Sprintf("missing-flag-with-a-fairly-long-key-%05d", i), false)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	summaries := collector.received("summary")
	counted := map[string]bool{}
	for _, s := range summaries {
		counters := s["counters"].([]any)
		encoded, _ := json.Marshal(s)
		if len(counters) > 10000 || len(encoded) > 512<<10 {
			t.Errorf("a summary of %d counters, %d bytes: the collector rejects it", len(counters), len(encoded))
		}
		for _, ctr := range counters {
			counted[ctr.(map[string]any)["flag_key"].(string)] = true
		}
	}
	if len(counted) != flags {
		t.Errorf("%d summaries counted %d flags, want %d", len(summaries), len(counted), flags)
	}
}

// TestConcurrentEvaluationsCountedExactly: evaluations recorded from many goroutines at once, while
// flushes take the summary counts, are all counted (exactly, across summaries), and each context x
// flag x variation is exposed exactly once.
func TestConcurrentEvaluationsCountedExactly(t *testing.T) {
	collector := newFakeCollector(t)
	c, td := eventsClient(t, collector, switchyard.EventsConfig{DedupWindow: time.Hour}, nil)
	setSplitAndFixed(td)
	const workers, perWorker, contexts = 16, 3000, 301 // 301: each context meets every flag
	ctxs := make([]switchyard.Context, contexts)
	for i := range ctxs {
		ctxs[i] = switchyard.NewContext(fmt.Sprintf("user-%d", i))
	}
	flags := []string{"split", "fixed", "missing"}

	// The expected counts, from the engine alone (which records nothing).
	want := map[string]float64{}
	exposed := map[string]bool{}
	expectEvaluations(c.Ruleset(), ctxs, flags, workers, perWorker, want, exposed)

	stopFlushing := flushContinuously(c) // flushes while evaluations are being counted
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				c.Bool(ctxs[(w*perWorker+i)%contexts], flags[i%len(flags)], false)
			}
		})
	}
	wg.Wait()
	stopFlushing()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	checkCountedExactly(t, c, collector, want, exposed)
}

// checkCountedExactly checks what a closed client sent: summary counters equal to want
// ("flag/variation" → evaluations), each exposure in exposed ("context/flag/variation") sent
// exactly once, and the client's stats agreeing (every other evaluation of a served variation
// deduplicated, none dropped or failed).
func checkCountedExactly(t *testing.T, c *switchyard.Client, collector *fakeCollector, want map[string]float64, exposed map[string]bool) {
	t.Helper()
	counts := map[string]float64{}
	for _, s := range collector.received("summary") {
		for _, raw := range s["counters"].([]any) {
			ctr := raw.(map[string]any)
			counts[ctr["flag_key"].(string)+"/"+ctr["variation_key"].(string)] += ctr["count"].(float64)
		}
	}
	if !equalCounts(counts, want) {
		t.Errorf("summary counters = %v, want %v", counts, want)
	}
	got := map[string]int{}
	for _, e := range collector.received("exposure") {
		got[e["context_key"].(string)+"/"+e["flag_key"].(string)+"/"+e["variation_key"].(string)]++
	}
	for k, n := range got {
		if n != 1 || !exposed[k] {
			t.Errorf("exposure %s sent %d times", k, n)
		}
	}
	if len(got) != len(exposed) {
		t.Errorf("%d distinct exposures, want %d", len(got), len(exposed))
	}
	served := want["split/on"] + want["split/off"] + want["fixed/true"]
	if s := c.EventStats(); s.Deduplicated != uint64(served)-uint64(len(exposed)) || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats = %+v, want %d deduplicated, none dropped or failed", s, uint64(served)-uint64(len(exposed)))
	}
}

// setSplitAndFixed sets two flags the concurrency tests evaluate: "split", a 50/50 boolean
// rollout, and "fixed", always true.
func setSplitAndFixed(td *switchyard.TestData) {
	td.SetFlag(ruleset.Flag{
		Key: "split", Kind: ruleset.KindBoolean, On: true,
		Variations:  []ruleset.Variation{{Key: "on", Value: json.RawMessage("true")}, {Key: "off", Value: json.RawMessage("false")}},
		Fallthrough: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{{Variation: "on", Weight: 50000}, {Variation: "off", Weight: 50000}}}},
	})
	td.SetBool("fixed", true)
}

// expectEvaluations adds to want the evaluations the concurrency tests make — worker w's i-th
// of perWorker evaluates flags[i%len(flags)] for ctxs[(w*perWorker+i)%len(ctxs)] — counted by
// flag/variation as the engine alone (which records nothing) evaluates them, and to exposed
// each context/flag/variation that served a variation.
func expectEvaluations(rs *evaluation.Ruleset, ctxs []switchyard.Context, flags []string, workers, perWorker int, want map[string]float64, exposed map[string]bool) {
	for w := range workers {
		for i := range perWorker {
			ctx, flag := ctxs[(w*perWorker+i)%len(ctxs)], flags[i%len(flags)]
			r := rs.Evaluate(flag, ctx)
			want[flag+"/"+r.VariationKey()]++
			if r.Variation != nil {
				key, _ := ctx.Key("user")
				exposed[key+"/"+flag+"/"+r.VariationKey()] = true
			}
		}
	}
}

// flushContinuously flushes c in a loop until the returned stop is called (which waits for
// the flush in progress).
func flushContinuously(c *switchyard.Client) (stop func()) {
	done, flushed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-done:
				return
			default:
				_ = c.FlushAndWait(context.Background())
			}
		}
	}()
	return func() { close(done); <-flushed }
}
