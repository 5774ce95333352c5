package switchyard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// BenchmarkClientBool measures Client.Bool on a flag with one rule serving a 50/50 rollout, with
// events off and on (summary count and exposure dedup on every call; the exposure itself is sent
// once).
func BenchmarkClientBool(b *testing.B) {
	for _, events := range []bool{false, true} {
		name := "events-off"
		if events {
			name = "events-on"
		}
		b.Run(name, func(b *testing.B) {
			td := switchyard.NewTestData()
			td.SetFlag(ruleset.Flag{
				Key: "f", Kind: ruleset.KindBoolean, On: true,
				Variations: []ruleset.Variation{{Key: "on", Value: []byte("true")}, {Key: "off", Value: []byte("false")}},
				Rules: []ruleset.Rule{{Clauses: []ruleset.Clause{{Attribute: "country", Op: ruleset.OpIn, Values: []any{"US", "CA"}}},
					Serve: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{{Variation: "on", Weight: 50000}, {Variation: "off", Weight: 50000}}}}}},
				Fallthrough: ruleset.Serve{Variation: "off"},
			})
			cfg := switchyard.Config{DataSource: td, Logger: quiet}
			if events {
				sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
				defer sink.Close()
				cfg.SDKKey, cfg.EventsURL = "k", sink.URL
			}
			c, err := switchyard.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := switchyard.NewContext("user-7f3a9c21", switchyard.Attr("country", "US"), switchyard.Attr("age", 34))
			b.ReportAllocs()
			for b.Loop() {
				_ = c.Bool(ctx, "f", false)
			}
		})
	}
}

// BenchmarkClientBoolParallel measures Client.Bool with events on from GOMAXPROCS goroutines at
// once, each with its own context (the production case: every request goroutine evaluates and
// records a summary count and an exposure dedup check). After the first exposure per context,
// every call is a summary count plus a dedup hit.
func BenchmarkClientBoolParallel(b *testing.B) {
	td := switchyard.NewTestData()
	td.SetFlag(ruleset.Flag{
		Key: "f", Kind: ruleset.KindBoolean, On: true,
		Variations: []ruleset.Variation{{Key: "on", Value: []byte("true")}, {Key: "off", Value: []byte("false")}},
		Rules: []ruleset.Rule{{Clauses: []ruleset.Clause{{Attribute: "country", Op: ruleset.OpIn, Values: []any{"US", "CA"}}},
			Serve: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: []ruleset.WeightedVariation{{Variation: "on", Weight: 50000}, {Variation: "off", Weight: 50000}}}}}},
		Fallthrough: ruleset.Serve{Variation: "off"},
	})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer sink.Close()
	c, err := switchyard.New(switchyard.Config{DataSource: td, Logger: quiet, SDKKey: "k", EventsURL: sink.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := switchyard.NewContext(fmt.Sprintf("user-%08d", next.Add(1)), switchyard.Attr("country", "US"), switchyard.Attr("age", 34))
		for pb.Next() {
			_ = c.Bool(ctx, "f", false)
		}
	})
}
