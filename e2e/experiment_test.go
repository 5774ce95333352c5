package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/e2e/stack"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

// pipeline is the whole experimentation path as processes: flag service, relay, ingest
// (collector + ClickHouse writer) and the stats service with its results workers.
type pipeline struct {
	api    stack.API
	relay  *stack.Process
	ingest *stack.Process
	stats  *stack.Process
	key    string // production server SDK key
}

func startPipeline(t *testing.T, project string) *pipeline {
	t.Helper()
	dsn := testenv.PostgresDB(t)
	topic := testenv.KafkaTopicName(t, "rulesets")
	events := testenv.KafkaTopicName(t, "events")
	brokers := strings.Join(testenv.KafkaBrokers(), ",")
	chAddr := testenv.RequireClickHouse(t)
	chDB := "e2e_" + testenv.Suffix()
	common := []string{"-pg-dsn", dsn, "-kafka-brokers", brokers, "-rulesets-topic", topic, "-log-level", "warn"}
	dir := t.TempDir()
	ownerFile := filepath.Join(dir, "owner-token")
	stack.Run(t, "flagsvc", append([]string{"bootstrap", "-token-file", ownerFile}, common...)...)
	fs := stack.Start(t, "flagsvc", append(common, "-publish-sweep", "500ms")...)
	owner, _ := os.ReadFile(ownerFile)
	p := &pipeline{api: stack.API{Base: fs.URL, Token: strings.TrimSpace(string(owner))}}
	var svc struct {
		Token string `json:"token"`
	}
	p.api.Must(t, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "stats", "role": "admin"}, &svc)
	serviceFile := filepath.Join(dir, "service-token")
	if err := os.WriteFile(serviceFile, []byte(svc.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	p.api.Must(t, "POST", "/api/v1/projects", map[string]any{"key": project, "name": project}, nil)
	var key struct {
		Key string `json:"key"`
	}
	p.api.Must(t, "POST", "/api/v1/projects/"+project+"/environments/production/sdk-keys", map[string]any{"kind": "server"}, &key)
	p.key = key.Key
	p.relay = stack.Start(t, "evalrelay", "-kafka-brokers", brokers, "-rulesets-topic", topic, "-state-dir", filepath.Join(dir, "relay"), "-log-level", "warn")
	p.ingest = stack.Start(t, "ingest", "-kafka-brokers", brokers, "-rulesets-topic", topic, "-events-topic", events,
		"-dlq-topic", events+".dlq", "-clickhouse-addr", chAddr, "-clickhouse-database", chDB, "-writer-group", "e2e-"+testenv.Suffix(),
		"-writer-flush-interval", "200ms", "-log-level", "warn")
	t.Cleanup(func() { dropClickHouse(chAddr, chDB) })
	p.stats = stack.Start(t, "stats", "-pg-dsn", dsn, "-clickhouse-addr", chAddr, "-clickhouse-database", chDB,
		"-flagsvc-url", fs.URL, "-flagsvc-token-file", serviceFile, "-results-interval", "1h", "-log-level", "warn")
	// SDKs refused with 401 stop for good: connect them once the relay knows the new key.
	testenv.Eventually(t, 30*time.Second, "relay to accept the new SDK key", func() bool {
		return statusOf(p.relay.URL+"/sdk/v1/ruleset", p.key) == 200
	})
	return p
}

func (p *pipeline) client(t *testing.T, events bool) *switchyard.Client {
	t.Helper()
	c, err := switchyard.New(switchyard.Config{SDKKey: p.key, RelayURL: p.relay.URL, EventsURL: p.ingest.URL, InitTimeout: 30 * time.Second,
		Events: switchyard.EventsConfig{Disabled: !events, FlushInterval: 200 * time.Millisecond, BatchSize: 1000, Capacity: 200000,
			DisableSummaries: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// result is the part of a results snapshot the test reads.
type result struct {
	Exposures   map[string]int64 `json:"exposures"`
	DataQuality struct {
		SRM struct {
			PValue  float64 `json:"p_value"`
			Flagged bool    `json:"flagged"`
		} `json:"srm"`
		MultipleExposures struct {
			Contexts int64 `json:"contexts"`
		} `json:"multiple_exposures"`
	} `json:"data_quality"`
	Metrics []struct {
		Metric   string `json:"metric"`
		Role     string `json:"role"`
		Variants []struct {
			Key    string     `json:"key"`
			N      int64      `json:"n"`
			Mean   *float64   `json:"mean"`
			Effect *float64   `json:"effect"`
			CI     []*float64 `json:"ci"`
			PValue *float64   `json:"p_value"`
		} `json:"variants"`
	} `json:"metrics"`
}

// refresh asks the stats service to recompute until the exposures it sees reach want.
// refresh recomputes an experiment's results until every one of want exposures is in them and
// ready (if given) holds: exposures and conversions reach ClickHouse in separate inserts, so
// the last conversions can land a moment after the last exposures.
func (p *pipeline) refresh(t *testing.T, project, experiment string, want int64, ready ...func(result) bool) result {
	t.Helper()
	api := stack.API{Base: p.stats.URL, Token: p.api.Token}
	var r result
	testenv.Eventually(t, 90*time.Second, "every exposure to reach the results", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		r = result{}
		if _, err := api.Do(ctx, "POST", "/v1/projects/"+project+"/experiments/"+experiment+"/refresh", nil, &r); err != nil {
			t.Logf("refresh: %v", err)
			return false
		}
		total := int64(0)
		for _, n := range r.Exposures {
			total += n
		}
		for _, ok := range ready {
			if !ok(r) {
				return false
			}
		}
		return total >= want
	})
	return r
}

func (r result) metric(t *testing.T, key string) (control, treatment struct {
	Key    string     `json:"key"`
	N      int64      `json:"n"`
	Mean   *float64   `json:"mean"`
	Effect *float64   `json:"effect"`
	CI     []*float64 `json:"ci"`
	PValue *float64   `json:"p_value"`
}) {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Metric == key {
			return m.Variants[0], m.Variants[1]
		}
	}
	t.Fatalf("metric %s missing from the results", key)
	return
}

// TestExperimentResultsEndToEnd drives a simulated population through the Go SDK (evaluating
// from a relay, sending exposures and conversions to the collector) and checks what the
// results workers computed: the true effect is detected and covered by the interval, the null
// metric is not significant, the per-variant counts equal the ones the test sent, no SRM. A
// second experiment with deliberately lost treatment exposures raises the SRM flag.
func TestExperimentResultsEndToEnd(t *testing.T) {
	p := startPipeline(t, "shop")
	for _, f := range []string{"checkout", "banner"} {
		p.api.Must(t, "POST", "/api/v1/projects/shop/flags", map[string]any{"key": f, "kind": "boolean",
			"variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, nil)
	}
	for _, m := range []map[string]any{
		{"key": "conversion", "kind": "proportion", "event_key": "purchase"},
		{"key": "signup", "kind": "proportion", "event_key": "signup"},
		{"key": "revenue", "kind": "sum", "event_key": "purchase", "cuped_preperiod": "0s"},
	} {
		p.api.Must(t, "POST", "/api/v1/projects/shop/metrics", m, nil)
	}
	for _, x := range []struct{ key, flag string }{{"checkout-test", "checkout"}, {"banner-test", "banner"}} {
		// A fixed salt: a random one (the default) would assign the simulated users differently
		// in every run, and the statistical assertions below would fail in some of them (the
		// null metric significant one run in twenty).
		p.api.Must(t, "POST", "/api/v1/projects/shop/experiments", map[string]any{"key": x.key, "environment": "production", "flag": x.flag,
			"salt": x.key + "-e2e", "control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
			"metrics":  map[string]any{"primary": []string{"conversion"}, "secondary": []string{"signup", "revenue"}},
			"analysis": map[string]any{"sequential": false, "cuped": false}}, nil)
		p.api.Must(t, "POST", "/api/v1/projects/shop/experiments/"+x.key+"/start", nil, nil)
	}
	sdk := p.client(t, true)
	silent := p.client(t, false) // evaluates without exposures: to know an assignment without reporting it
	for _, c := range []*switchyard.Client{sdk, silent} {
		testenv.Eventually(t, 30*time.Second, "the SDK to see the started experiments", func() bool {
			d := c.BoolDetail(switchyard.NewContext("probe"), "banner", false)
			return d.Reason == "SPLIT"
		})
	}
	r := rand.New(rand.NewPCG(2026, 11))
	const users = 4000
	rate := map[string]float64{"off": 0.10, "on": 0.15} // a true relative lift of +50%
	units := map[string]int64{}
	converted := map[string]int64{}
	bannerUnits := int64(0)
	for i := 0; i < users; i++ {
		ctx := switchyard.NewContext(fmt.Sprintf("user-%05d", i))
		d := sdk.BoolDetail(ctx, "checkout", false)
		units[d.Variation]++
		if r.Float64() < rate[d.Variation] {
			converted[d.Variation]++
			sdk.Track(ctx, "purchase", 20+r.Float64()*80)
		}
		if r.Float64() < 0.3 {
			sdk.Track(ctx, "signup", 0)
		}
		// banner: 40% of the treatment's exposures are lost (a broken client on one branch).
		if silent.BoolDetail(ctx, "banner", false).Variation == "on" && r.Float64() < 0.4 {
			continue
		}
		sdk.Bool(ctx, "banner", false)
		bannerUnits++
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sdk.FlushAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	// Every conversion sent counted too (the assertions below check each arm exactly).
	allConverted := func(r result) bool {
		control, treatment := r.metric(t, "conversion")
		counted := 0.0
		for _, v := range []struct {
			n    int64
			mean *float64
		}{{control.N, control.Mean}, {treatment.N, treatment.Mean}} {
			if v.mean != nil {
				counted += *v.mean * float64(v.n)
			}
		}
		return math.Round(counted) >= float64(converted["off"]+converted["on"])
	}
	res := p.refresh(t, "shop", "checkout-test", users, allConverted)
	if res.DataQuality.SRM.Flagged || res.DataQuality.MultipleExposures.Contexts != 0 {
		t.Fatalf("healthy experiment flagged: %+v", res.DataQuality)
	}
	control, treatment := res.metric(t, "conversion")
	// Exactly the units and conversions the test sent.
	for _, v := range []struct {
		row  int64
		mean *float64
		key  string
	}{{control.N, control.Mean, "off"}, {treatment.N, treatment.Mean, "on"}} {
		want := float64(converted[v.key]) / float64(units[v.key])
		if v.row != units[v.key] || v.mean == nil || math.Abs(*v.mean-want) > 1e-12 {
			t.Fatalf("%s: n %d mean %v, want n %d mean %v", v.key, v.row, deref(v.mean), units[v.key], want)
		}
	}
	t.Logf("conversion: off %d/%d, on %d/%d; lift %.3f, CI [%.3f, %.3f], p %.2g; SRM p %.3f",
		converted["off"], units["off"], converted["on"], units["on"], deref(treatment.Effect), deref(treatment.CI[0]), deref(treatment.CI[1]),
		deref(treatment.PValue), res.DataQuality.SRM.PValue)
	if treatment.PValue == nil || *treatment.PValue >= 0.05 {
		t.Fatalf("a +50%% lift on %d users must be detected: p = %v", users, treatment.PValue)
	}
	if treatment.CI[0] == nil || treatment.CI[1] == nil || !(*treatment.CI[0] < 0.5 && 0.5 < *treatment.CI[1]) {
		t.Fatalf("the interval [%v, %v] does not cover the true lift 0.5", treatment.CI[0], treatment.CI[1])
	}
	if _, null := res.metric(t, "signup"); null.PValue == nil || *null.PValue < 0.05 {
		t.Fatalf("the null metric came out significant: p = %v", null.PValue)
	}
	if _, rev := res.metric(t, "revenue"); rev.Effect == nil || *rev.Effect <= 0 {
		t.Fatalf("revenue follows conversions up: %+v", rev)
	}
	skewed := p.refresh(t, "shop", "banner-test", bannerUnits)
	t.Logf("banner exposures %v, SRM p %.3g", skewed.Exposures, skewed.DataQuality.SRM.PValue)
	if !skewed.DataQuality.SRM.Flagged || skewed.DataQuality.SRM.PValue >= 0.001 {
		t.Fatalf("losing 40%% of one arm's exposures must raise the SRM flag: %+v (exposures %v)", skewed.DataQuality.SRM, skewed.Exposures)
	}
	// History: two refreshes of checkout-test make a time series.
	api := stack.API{Base: p.stats.URL, Token: p.api.Token}
	var ts struct {
		Points []struct {
			Effect *float64 `json:"effect"`
		} `json:"points"`
	}
	api.Must(t, "POST", "/v1/projects/shop/experiments/checkout-test/refresh", nil, nil)
	api.Must(t, "GET", "/v1/projects/shop/experiments/checkout-test/timeseries?metric=conversion", nil, &ts)
	if len(ts.Points) < 2 || ts.Points[len(ts.Points)-1].Effect == nil {
		t.Fatalf("timeseries: %+v", ts.Points)
	}
	// Planning a follow-up on the same flag: the estimate starts from the conversion baseline
	// the flag's traffic shows (every exposed user, whichever variation).
	p.api.Must(t, "POST", "/api/v1/projects/shop/experiments", map[string]any{"key": "checkout-next", "environment": "production",
		"flag": "checkout", "control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000},
			map[string]any{"variation": "on", "weight": 50000}}, "metrics": map[string]any{"primary": []string{"conversion"}},
		"analysis": map[string]any{"sequential": false}, "planned_duration": "336h"}, nil)
	var est struct {
		BaselineMean float64 `json:"baseline_mean"`
		PerVariantN  int64   `json:"per_variant_n"`
		Days         float64 `json:"days"`
		Power        float64 `json:"power"`
	}
	api.Must(t, "GET", "/v1/projects/shop/experiments/checkout-next/estimate?effect=0.2", nil, &est)
	overall := float64(converted["off"]+converted["on"]) / float64(users)
	if math.Abs(est.BaselineMean-overall) > 1e-9 || est.PerVariantN < 100 || est.Days <= 0 || est.Power < 0.8 {
		t.Fatalf("estimate: %+v (overall conversion %.4f)", est, overall)
	}
	// A lift of 20% on a ~12.5%% baseline needs roughly 2,800 users per arm at 80% power.
	if est.PerVariantN < 1500 || est.PerVariantN > 5000 {
		t.Fatalf("per-variant n %d is not what the power formula gives", est.PerVariantN)
	}
	// Callers need a token the flag service accepts.
	if status := statusOf(p.stats.URL+"/v1/projects/shop/experiments/checkout-test/results", "Bearer nope"); status != 401 {
		t.Fatalf("results without a valid token: %d", status)
	}
}

func deref(f *float64) float64 {
	if f == nil {
		return math.NaN()
	}
	return *f
}
