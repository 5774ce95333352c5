package switchyard_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// TestCloseStopsEveryGoroutine: Close ends every goroutine the client started (and its
// connections'), whatever the data source is doing: waiting for the first ruleset, waiting a
// reconnection backoff, streaming, polling with the fallback.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		relay func(r *fakeRelay)
		src   switchyard.DataSource
	}{
		{"mid-init on a hanging relay", func(r *fakeRelay) { r.hang = true }, fastStreaming()},
		{"mid-backoff", func(r *fakeRelay) { r.streamsDown = true },
			switchyard.Streaming{InitialBackoff: time.Hour, MaxBackoff: time.Hour}},
		{"streaming", func(*fakeRelay) {}, fastStreaming()},
		{"streaming with polling fallback", func(r *fakeRelay) { r.streamsDown = true },
			switchyard.Streaming{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, FallbackToPollingAfter: 1}},
		{"polling", func(*fakeRelay) {}, switchyard.Polling{Interval: 5 * time.Millisecond}},
		{"test data", func(*fakeRelay) {}, switchyard.NewTestData()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := newFakeRelay(t, rulesetJSON(t, 1, boolFlag("f", true)))
			relay.set(tc.relay)
			collector := newFakeCollector(t)
			before := runtime.NumGoroutine()
			c, err := switchyard.New(switchyard.Config{SDKKey: sdkKey, RelayURL: relay.server.URL, EventsURL: collector.server.URL,
				DataSource: tc.src, StartNonBlocking: true, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "the client to reach the relay", func() bool {
				_, test := tc.src.(*switchyard.TestData)
				return test || relay.streamConnects.Load()+relay.rulesetRequests.Load() > 0
			})
			c.Track(alice, "e", 1)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(2 * time.Millisecond) // polling the goroutine count
			}
		})
	}
}
