// Package e2etest runs the jobs service end to end, as real processes with the rest of
// Switchyard: flag service, evaluation relay, ingest (collector and ClickHouse writer) and two
// jobs replicas, on the local Postgres, Kafka and ClickHouse, with Slack replaced by the local
// Web API stand-in (slacktest) and users simulated through the Go SDK.
package e2etest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/switchyard-io/switchyard/jobs/internal/slack/slacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/stacktest"
	"github.com/switchyard-io/switchyard/platform/testenv"
	"github.com/switchyard-io/switchyard/sdks/go/switchyard"
)

const slackToken = "xoxb-e2e"

// guardrailInterval is the jobs' sweep interval: short for the test, the production default
// (1m) for the breach-to-SDK benchmark (BENCHMARKS.md): JOBS_E2E_GUARDRAIL_INTERVAL=1m.
func guardrailInterval() string {
	if v := os.Getenv("JOBS_E2E_GUARDRAIL_INTERVAL"); v != "" {
		return v
	}
	return "2s"
}

// TestGuardrailRollsBackAHarmfulReleaseEndToEnd: a running experiment whose treatment triples
// the error rate (users simulated through the Go SDK, events through the collector, Kafka and
// the ClickHouse writer) is rolled back by the jobs service — with two replicas running — the
// SDK then serves the control, the audit log holds one automatic rollback, and exactly one
// Slack message was posted, also after a replica restarts. The healthy experiment beside it is
// left alone.
func TestGuardrailRollsBackAHarmfulReleaseEndToEnd(t *testing.T) {
	fs := stacktest.StartFlagService(t)
	owner := fs.Owner
	brokers := strings.Join(testenv.KafkaBrokers(), ",")
	chAddr := testenv.RequireClickHouse(t)
	chDB := "jobs_e2e_" + testenv.Suffix()
	events := testenv.KafkaTopicName(t, "events")
	dir := t.TempDir()

	owner.Must(t, "POST", "/api/v1/projects", map[string]any{"key": "shop", "name": "Shop"}, nil)
	for _, m := range []map[string]any{
		{"key": "conversion", "kind": "proportion", "event_key": "purchase"},
		{"key": "error-rate", "name": "Error rate", "kind": "proportion", "event_key": "error", "direction": "decrease"},
	} {
		owner.Must(t, "POST", "/api/v1/projects/shop/metrics", m, nil)
	}
	for _, x := range []struct{ flag, key string }{{"checkout", "checkout-q4"}, {"banner", "banner-q4"}} {
		owner.Must(t, "POST", "/api/v1/projects/shop/flags", map[string]any{"key": x.flag, "name": x.flag, "kind": "boolean",
			"variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, nil)
		// A fixed salt, so the simulated users are assigned the same way in every run (a
		// random one would let the healthy experiment breach by chance in some runs).
		owner.Must(t, "POST", "/api/v1/projects/shop/experiments", map[string]any{"key": x.key, "environment": "production", "flag": x.flag,
			"salt": x.key + "-e2e", "control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
			"metrics": map[string]any{"primary": []string{"conversion"},
				"guardrails": []any{map[string]any{"metric": "error-rate", "tolerance": 0.02, "action": "rollback"}}}}, nil)
		owner.Must(t, "POST", "/api/v1/projects/shop/experiments/"+x.key+"/start", nil, nil)
	}
	var key struct {
		Key string `json:"key"`
	}
	owner.Must(t, "POST", "/api/v1/projects/shop/environments/production/sdk-keys", map[string]any{"kind": "server"}, &key)
	tokenFile := filepath.Join(dir, "service-token")
	if err := os.WriteFile(tokenFile, []byte(fs.ServiceToken(t, "jobs", "admin", "", "")), 0o600); err != nil {
		t.Fatal(err)
	}

	relay := stacktest.Start(t, "evalrelay", "-kafka-brokers", brokers, "-rulesets-topic", fs.Topic, "-state-dir", filepath.Join(dir, "relay"), "-log-level", "warn")
	ingest := stacktest.Start(t, "ingest", "-kafka-brokers", brokers, "-rulesets-topic", fs.Topic, "-events-topic", events,
		"-dlq-topic", events+".dlq", "-clickhouse-addr", chAddr, "-clickhouse-database", chDB, "-writer-group", "jobs-e2e-"+testenv.Suffix(),
		"-writer-flush-interval", "200ms", "-log-level", "warn")
	conn, err := ch.Open(&ch.Options{Protocol: ch.Native, Addr: []string{chAddr}, Auth: ch.Auth{Database: chDB, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chDB)
		conn.Close()
	})

	sl := slacktest.New(slackToken, "C-SHOP")
	defer sl.Close()
	jobsArgs := func(name string) []string {
		return []string{"-pg-dsn", fs.DSN, "-clickhouse-addr", chAddr, "-clickhouse-database", chDB, "-flagsvc-url", fs.URL,
			"-flagsvc-token-file", tokenFile, "-stats-url", "", "-dashboards-url", "https://dash.example.com",
			"-slack-token", slackToken, "-slack-api-url", sl.URL, "-slack-default-channel", "C-SHOP",
			"-guardrail-interval", guardrailInterval(), "-scheduler-interval", "1s", "-alert-poll", "200ms",
			"-replica-id", name, "-log-level", "info"}
	}

	// The simulated population.
	sdk, err := switchyard.New(switchyard.Config{SDKKey: key.Key, RelayURL: relay.URL, EventsURL: ingest.URL, InitTimeout: 30 * time.Second,
		Events: switchyard.EventsConfig{FlushInterval: 200 * time.Millisecond, BatchSize: 2000, Capacity: 200000, DisableSummaries: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdk.Close() })
	testenv.Eventually(t, 30*time.Second, "the SDK to see both experiments", func() bool {
		return sdk.BoolDetail(switchyard.NewContext("probe"), "checkout", false).Reason == "SPLIT" &&
			sdk.BoolDetail(switchyard.NewContext("probe"), "banner", false).Reason == "SPLIT"
	})
	r := rand.New(rand.NewPCG(8, 2026))
	errorRate := map[string]map[string]float64{"checkout": {"off": 0.05, "on": 0.15}, "banner": {"off": 0.05, "on": 0.05}}
	const users = 6000
	sent := 0
	var treated switchyard.Context
	haveTreated := false
	for i := 0; i < users; i++ {
		ctx := switchyard.NewContext(fmt.Sprintf("user-%05d", i))
		for _, flag := range []string{"checkout", "banner"} {
			v := sdk.BoolDetail(ctx, flag, false).Variation
			if flag == "checkout" && v == "on" && !haveTreated {
				treated, haveTreated = ctx, true
			}
			if r.Float64() < errorRate[flag][v] {
				// One error event per unit and flag: a unit in both experiments counts for both.
				sdk.Track(ctx, "error", 1)
				sent++
			}
		}
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sdk.FlushAndWait(flushCtx); err != nil {
		t.Fatal(err)
	}
	// The harmful events are queryable: the clock of the breach-to-SDK measurement starts.
	testenv.Eventually(t, 60*time.Second, "every error event to reach ClickHouse", func() bool {
		var n uint64
		row := conn.QueryRow(context.Background(), "SELECT uniqExact(event_id) FROM tracks WHERE event_key = 'error'")
		return row.Scan(&n) == nil && n >= uint64(sent)
	})
	// The harmful events are all queryable before the jobs replicas start, so the measurement
	// below covers a whole guardrail interval (the worst case: data that landed just after a
	// sweep) plus the start-up of the replicas (about half a second).
	queryable := time.Now()
	replicas := []*stacktest.Process{stacktest.Start(t, "jobs", jobsArgs("jobs-a")...), stacktest.Start(t, "jobs", jobsArgs("jobs-b")...)}
	testenv.Eventually(t, 3*time.Minute, "the SDK to serve the control to a treated user", func() bool {
		return sdk.BoolDetail(treated, "checkout", true).Variation == "off"
	})
	elapsed := time.Since(queryable)
	t.Logf("breach to SDK: %s after the harmful events were queryable (guardrail interval %s)", elapsed.Round(time.Millisecond), guardrailInterval())
	if d := sdk.BoolDetail(treated, "checkout", true); d.Value || d.Reason == "SPLIT" {
		t.Fatalf("treated user after the rollback: %+v", d)
	}
	// Slack: one message, naming what regressed, the interval, what was done.
	testenv.Eventually(t, 30*time.Second, "the Slack alert", func() bool { return len(sl.Messages("C-SHOP")) >= 1 })
	msg := sl.Messages("C-SHOP")[0]
	for _, want := range []string{"Guardrail breached: error-rate", "with checkout=on in production", "Rolled back: checkout now serves off."} {
		if !strings.Contains(msg.Text, want) {
			t.Fatalf("message %q lacks %q", msg.Text, want)
		}
	}
	if !strings.Contains(string(msg.Blocks), "always-valid") || !strings.Contains(string(msg.Blocks), "Error rate") {
		t.Fatalf("blocks: %s", msg.Blocks)
	}
	var audit struct {
		Items []struct {
			Comment string `json:"comment"`
		} `json:"items"`
	}
	owner.Must(t, "GET", "/api/v1/audit?action=flag_config.auto_rollback", nil, &audit)
	if len(audit.Items) != 1 || !strings.Contains(audit.Items[0].Comment, "automatic rollback by guardrail") {
		t.Fatalf("audit: %+v", audit.Items)
	}
	// A replica restarts, both keep sweeping: still one message, still rolled back, and the
	// healthy experiment keeps serving its split.
	replicas[0].Stop()
	replicas[0] = stacktest.Start(t, "jobs", jobsArgs("jobs-a2")...)
	jobs := stacktest.API{Base: replicas[1].URL, Token: owner.Token}
	sweeps := func() float64 {
		total := 0.0
		for _, p := range replicas {
			total += metric(t, p.URL, `jobs_runs_total{job="guardrail-sweep",outcome="ok"}`)
		}
		return total
	}
	start := sweeps()
	interval, err := time.ParseDuration(guardrailInterval())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*interval+time.Minute, "two more guardrail sweeps", func() bool { return sweeps() >= start+2 })
	if n := len(sl.Messages("")); n != 1 {
		t.Fatalf("%d Slack messages, want exactly 1: %+v", n, sl.Messages(""))
	}
	var alerts struct {
		Items []struct {
			Kind, Status string
		} `json:"items"`
	}
	jobs.Must(t, "GET", "/v1/projects/shop/alerts", nil, &alerts)
	if len(alerts.Items) != 1 || alerts.Items[0].Kind != "guardrail_breach" || alerts.Items[0].Status != "sent" {
		t.Fatalf("alerts: %+v", alerts.Items)
	}
	if d := sdk.BoolDetail(treated, "checkout", true); d.Variation != "off" {
		t.Fatalf("the rollback did not hold: %+v", d)
	}
	healthy := map[string]bool{}
	for i := 0; i < 200; i++ {
		healthy[sdk.BoolDetail(switchyard.NewContext(fmt.Sprintf("user-%05d", i)), "banner", false).Variation] = true
	}
	if !healthy["on"] || !healthy["off"] {
		t.Fatalf("the healthy experiment stopped splitting: %v", healthy)
	}
	var gs struct {
		Items []struct{ Flag, Status string } `json:"items"`
	}
	owner.Must(t, "GET", "/api/v1/guardrails", nil, &gs)
	for _, g := range gs.Items {
		if want := map[string]string{"checkout": "breached", "banner": "active"}[g.Flag]; g.Status != want {
			t.Fatalf("guardrail of %s is %s, want %s", g.Flag, g.Status, want)
		}
	}
}
