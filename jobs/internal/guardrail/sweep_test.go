package guardrail_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/chtest"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/guardrail"
	"github.com/switchyard-io/switchyard/jobs/internal/slack"
	"github.com/switchyard-io/switchyard/jobs/internal/slack/slacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/stacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

const slackToken = "xoxb-guardrail-test"

// experiment creates a flag and a running experiment on it with an error-rate guardrail.
func experiment(t testing.TB, owner stacktest.API, flag, key, action string) {
	t.Helper()
	owner.Must(t, "POST", "/api/v1/projects/shop/flags", map[string]any{"key": flag, "name": flag, "kind": "boolean",
		"variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, nil)
	owner.Must(t, "POST", "/api/v1/projects/shop/experiments", map[string]any{"key": key, "environment": "production", "flag": flag,
		"control": "off", "variations": []any{map[string]any{"variation": "off", "weight": 50000}, map[string]any{"variation": "on", "weight": 50000}},
		"metrics": map[string]any{"primary": []string{"conversion"},
			"guardrails": []any{map[string]any{"metric": "error-rate", "tolerance": 0.02, "action": action}}}}, nil)
	owner.Must(t, "POST", "/api/v1/projects/shop/experiments/"+key+"/start", nil, nil)
}

func metrics(t testing.TB, owner stacktest.API) {
	t.Helper()
	owner.Must(t, "POST", "/api/v1/projects", map[string]any{"key": "shop", "name": "Shop"}, nil)
	for _, m := range []map[string]any{
		{"key": "conversion", "kind": "proportion", "event_key": "purchase"},
		{"key": "error-rate", "name": "Error rate", "kind": "proportion", "event_key": "error", "direction": "decrease"},
	} {
		owner.Must(t, "POST", "/api/v1/projects/shop/metrics", m, nil)
	}
}

type started struct {
	EnvironmentID string    `json:"environment_id"`
	StartedAt     time.Time `json:"started_at"`
}

func startedAt(t testing.TB, owner stacktest.API, key string) started {
	t.Helper()
	var x started
	owner.Must(t, "GET", "/api/v1/projects/shop/experiments/"+key, nil, &x)
	return x
}

// TestHarmfulTreatmentIsRolledBackOnce: two replicas sweep at the same time; the experiment
// whose treatment triples the error rate is rolled back to its control exactly once (one
// audited automatic rollback, one Slack message), the healthy experiment is left alone, a
// later sweep (the metric has "recovered": no new data) does not re-enable anything, and an
// experiment whose traffic split is broken raises one SRM alert.
func TestHarmfulTreatmentIsRolledBackOnce(t *testing.T) {
	fs := stacktest.StartFlagService(t)
	metrics(t, fs.Owner)
	experiment(t, fs.Owner, "checkout", "checkout-q4", "rollback")
	experiment(t, fs.Owner, "banner", "banner-q4", "rollback")
	experiment(t, fs.Owner, "search", "search-q4", "alert")
	conn, _ := chtest.Database(t)
	for _, x := range []struct {
		key, flag string
		arms      []arm
	}{
		{"checkout-q4", "checkout", []arm{{"off", 3000, 150}, {"on", 3000, 450}}}, // errors 5% → 15%
		{"banner-q4", "banner", []arm{{"off", 3000, 150}, {"on", 3000, 155}}},     // unchanged
		{"search-q4", "search", []arm{{"off", 1000, 50}, {"on", 1300, 65}}},       // a broken split, same error rate
	} {
		s := startedAt(t, fs.Owner, x.key)
		seedExperiment(t, conn, s.EnvironmentID, x.flag, x.key, "error", s.StartedAt, x.arms...)
	}
	service := fs.ServiceToken(t, "jobs", "admin", "", "")
	client := flagsvc.New(fs.URL, service, "")
	dsn := testenv.PostgresDB(t)
	sl := slacktest.New(slackToken)
	defer sl.Close()
	log := slog.New(slog.DiscardHandler)
	now := func() time.Time { return time.Now().Add(time.Minute) }
	var replicas []*guardrail.Sweeper
	var dispatchers []*alert.Dispatcher
	for i := 0; i < 2; i++ {
		st, err := postgres.Open(context.Background(), dsn, 8, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		st.DefaultChannel = "C-ONCALL"
		sw := guardrail.NewSweeper(client, st, conn, log, nil)
		sw.Now, sw.DashboardURL = now, "https://dash.example.com"
		replicas = append(replicas, sw)
		dispatchers = append(dispatchers, alert.NewDispatcher(st, slack.New(slack.Config{Token: slackToken, APIURL: sl.URL}), log, "r", nil))
	}
	before := config(t, fs, "banner")
	var wg sync.WaitGroup
	results := make([]guardrail.Result, 2)
	for i, sw := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := sw.Sweep(context.Background())
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	t.Logf("sweeps: %+v", results)
	for _, d := range dispatchers {
		for {
			more, err := d.DeliverOne(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				break
			}
		}
	}
	// The harmful experiment serves its control.
	cfg := config(t, fs, "checkout")
	if cfg.Fallthrough.Variation != "off" || cfg.Fallthrough.Rollout != nil {
		t.Fatalf("checkout not rolled back: %+v", cfg.Fallthrough)
	}
	// One automatic rollback in the audit log, naming the guardrail, effect, interval, p-value.
	var audit struct {
		Items []struct {
			Comment string `json:"comment"`
		} `json:"items"`
	}
	fs.Owner.Must(t, "GET", "/api/v1/audit?action=flag_config.auto_rollback", nil, &audit)
	if len(audit.Items) != 1 || !strings.Contains(audit.Items[0].Comment, "automatic rollback by guardrail") ||
		!strings.Contains(audit.Items[0].Comment, "error-rate") || !strings.Contains(audit.Items[0].Comment, "p=") {
		t.Fatalf("audit: %+v", audit.Items)
	}
	// The healthy experiment is untouched.
	if after := config(t, fs, "banner"); after.Version != before.Version || after.Fallthrough.Rollout == nil {
		t.Fatalf("banner changed: %+v", after)
	}
	var gs []flagsvc.Guardrail
	if gs, _ = client.Guardrails(context.Background(), ""); len(gs) != 3 {
		t.Fatalf("guardrails: %+v", gs)
	}
	status := map[string]string{}
	for _, g := range gs {
		status[g.Flag] = g.Status
	}
	if status["checkout"] != "breached" || status["banner"] != "active" || status["search"] != "active" {
		t.Fatalf("statuses: %v", status)
	}
	// Slack: one breach message and one SRM message, exactly.
	msgs := sl.Messages("C-ONCALL")
	if len(msgs) != 2 {
		t.Fatalf("%d messages: %+v", len(msgs), msgs)
	}
	var breach, srm *slacktest.Message
	for i := range msgs {
		switch {
		case strings.HasPrefix(msgs[i].Text, "Guardrail breached: error-rate"):
			breach = &msgs[i]
		case strings.HasPrefix(msgs[i].Text, "Sample ratio mismatch in experiment search-q4"):
			srm = &msgs[i]
		}
	}
	if breach == nil || srm == nil {
		t.Fatalf("messages: %+v", msgs)
	}
	if !strings.Contains(breach.Text, "with checkout=on in production") || !strings.Contains(breach.Text, "Rolled back: checkout now serves off.") ||
		!strings.Contains(string(breach.Blocks), "https://dash.example.com/p/shop/experiments/checkout-q4") {
		t.Fatalf("breach message: %s\n%s", breach.Text, breach.Blocks)
	}
	// Later sweeps: the breached guardrail is no longer swept, nothing is re-enabled, no new alert.
	for _, sw := range replicas {
		if _, err := sw.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dispatchers {
		if more, _ := d.DeliverOne(context.Background()); more {
			t.Fatal("a second alert was enqueued")
		}
	}
	if again := config(t, fs, "checkout"); again.Version != cfg.Version {
		t.Fatalf("checkout changed after the rollback: %+v", again)
	}
	if n := len(sl.Messages("")); n != 2 {
		t.Fatalf("%d messages after more sweeps", n)
	}
}

func config(t testing.TB, fs *stacktest.FlagService, flag string) flagsvc.FlagEnvironment {
	t.Helper()
	var fe flagsvc.FlagEnvironment
	fs.Owner.Must(t, "GET", stacktest.ConfigPath("shop", flag, "production"), nil, &fe)
	return fe
}

// TestHarmfulRolloutIsTurnedOff: a guardrail on a plain percentage rollout (no experiment)
// compares the contexts the rollout served since the guardrail was created; a treatment that
// triples the error rate turns the flag off, audited, with one Slack message. Contexts the
// flag served by targeting are not part of the comparison.
func TestHarmfulRolloutIsTurnedOff(t *testing.T) {
	fs := stacktest.StartFlagService(t)
	metrics(t, fs.Owner)
	fs.Owner.Must(t, "POST", "/api/v1/projects/shop/flags", map[string]any{"key": "promo", "name": "promo", "kind": "boolean",
		"variations": []any{map[string]any{"key": "on", "value": true}, map[string]any{"key": "off", "value": false}}}, nil)
	fs.Owner.Must(t, "PATCH", stacktest.ConfigPath("shop", "promo", "production"), map[string]any{"on": true,
		"fallthrough": map[string]any{"variation": nil, "rollout": map[string]any{"variations": []any{map[string]any{"variation": "on", "weight": 50000},
			map[string]any{"variation": "off", "weight": 50000}}}}, "comment": "ramp to 50%"}, nil)
	var g flagsvc.Guardrail
	fs.Owner.Must(t, "POST", "/api/v1/projects/shop/environments/production/guardrails", map[string]any{"flag": "promo",
		"metric": "error-rate", "tolerance": 0.02, "action": "rollback", "control": "off", "treatments": []string{"on"}}, &g)
	conn, _ := chtest.Database(t)
	// The rollout: errors 5% → 15%. Targeted contexts (say, employees) see "on" and never
	// err; counted as treatment units they would hide the harm.
	seedExperiment(t, conn, g.EnvironmentID, "promo", "", "error", g.CreatedAt, arm{"off", 3000, 150}, arm{"on", 3000, 450})
	seedExposures(t, conn, g.EnvironmentID, "promo", "on", "TARGETING_MATCH", "vip", 20000, g.CreatedAt)

	sl := sweepOneBreach(t, fs, conn)
	if cfg := config(t, fs, "promo"); cfg.On {
		t.Fatalf("promo still on: %+v", cfg)
	}
	var audit struct {
		Items []struct {
			Comment string `json:"comment"`
		} `json:"items"`
	}
	fs.Owner.Must(t, "GET", "/api/v1/audit?action=flag_config.auto_rollback", nil, &audit)
	if len(audit.Items) != 1 || !strings.Contains(audit.Items[0].Comment, "automatic rollback by guardrail "+g.ID) {
		t.Fatalf("audit: %+v", audit.Items)
	}
	msgs := sl.Messages("C-ONCALL")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Rolled back: promo was turned off.") {
		t.Fatalf("messages: %+v", msgs)
	}
}

// TestBreachAlertSaysTheSplitIsBroken: a treatment that loses a fifth of its units (as a crash
// would) and triples the error rate is rolled back, and the breach message says that the
// traffic split does not match the weights — on-call must know the comparison may be biased
// before re-releasing or trusting the numbers.
func TestBreachAlertSaysTheSplitIsBroken(t *testing.T) {
	fs := stacktest.StartFlagService(t)
	metrics(t, fs.Owner)
	experiment(t, fs.Owner, "checkout", "checkout-q4", "rollback")
	conn, _ := chtest.Database(t)
	s := startedAt(t, fs.Owner, "checkout-q4")
	seedExperiment(t, conn, s.EnvironmentID, "checkout", "checkout-q4", "error", s.StartedAt, arm{"off", 3000, 150}, arm{"on", 2400, 360})
	sl := sweepOneBreach(t, fs, conn)
	if cfg := config(t, fs, "checkout"); cfg.Fallthrough.Variation != "off" {
		t.Fatalf("checkout not rolled back: %+v", cfg.Fallthrough)
	}
	var breach *slacktest.Message
	msgs := sl.Messages("C-ONCALL")
	for i := range msgs {
		if strings.HasPrefix(msgs[i].Text, "Guardrail breached") {
			breach = &msgs[i]
		}
	}
	if breach == nil {
		t.Fatalf("no breach message: %+v", msgs)
	}
	if !strings.Contains(breach.Text, "sample ratio mismatch") || !strings.Contains(string(breach.Blocks), "Sample ratio mismatch") ||
		!strings.Contains(string(breach.Blocks), "`on`: 2400 (44%)") {
		t.Fatalf("the breach message does not say the split is broken:\n%s\n%s", breach.Text, breach.Blocks)
	}
}

// sweepOneBreach runs one sweep a minute from now, as the jobs service, expecting one breach,
// and delivers its alerts to a fake Slack (channel C-ONCALL), which it returns.
func sweepOneBreach(t *testing.T, fs *stacktest.FlagService, conn driver.Conn) *slacktest.Server {
	t.Helper()
	client := flagsvc.New(fs.URL, fs.ServiceToken(t, "jobs", "admin", "", ""), "")
	st, err := postgres.Open(context.Background(), testenv.PostgresDB(t), 8, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	st.DefaultChannel = "C-ONCALL"
	sl := slacktest.New(slackToken)
	t.Cleanup(sl.Close)
	log := slog.New(slog.DiscardHandler)
	sw := guardrail.NewSweeper(client, st, conn, log, nil)
	sw.Now = func() time.Time { return time.Now().Add(time.Minute) }
	if res, err := sw.Sweep(context.Background()); err != nil || res.Breached != 1 {
		t.Fatalf("sweep: %+v, %v", res, err)
	}
	d := alert.NewDispatcher(st, slack.New(slack.Config{Token: slackToken, APIURL: sl.URL}), log, "r", nil)
	for more := true; more; {
		if more, err = d.DeliverOne(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return sl
}
