package stale

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/chtest"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
	"github.com/switchyard-io/switchyard/jobs/internal/settings"
	"github.com/switchyard-io/switchyard/jobs/internal/slack"
	"github.com/switchyard-io/switchyard/jobs/internal/slack/slacktest"
	"github.com/switchyard-io/switchyard/jobs/internal/store/postgres"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

type projectFlags struct {
	*fakeFlags
	projects []flagsvc.Project
}

func (p projectFlags) Projects(context.Context) ([]flagsvc.Project, error) { return p.projects, nil }

// TestWeeklyDigestOncePerRun: two replicas running the same scheduled digest post one
// message per project; a project that turned the digest off gets none; the next week's run
// posts again.
func TestWeeklyDigestOncePerRun(t *testing.T) {
	conn, _ := chtest.Database(t)
	st, err := postgres.Open(context.Background(), testenv.PostgresDB(t), 8, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.DefaultChannel = "C-FLAGS"
	if _, err := st.PutProjectSettings(context.Background(), settings.Project{Project: "quiet", DigestEnabled: false}); err != nil {
		t.Fatal(err)
	}
	old := daysAgo(100)
	fs := projectFlags{
		fakeFlags: &fakeFlags{
			flags: []flagsvc.Flag{{Key: "dead-flag", Name: "Dead", OwnerID: "u1", CreatedAt: old}, {Key: "unused", OwnerID: "u1", CreatedAt: old}},
			envs:  []flagsvc.Environment{{ID: "env-prod", Key: "production"}},
		},
		projects: []flagsvc.Project{{Key: "shop"}, {Key: "quiet"}},
	}
	r := &Reporter{Settings: st, CH: conn, Defaults: settings.DefaultThresholds, Now: func() time.Time { return now }}
	sl := slacktest.New("xoxb-digest")
	defer sl.Close()
	log := slog.New(slog.DiscardHandler)
	d := &Digester{Reporter: r, Flags: fs, Store: st, Log: log, DashboardURL: "https://dash.example.com"}
	run := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for range 2 { // two replicas, or one replica re-running after a restart
		if err := d.Run(context.Background(), run); err != nil {
			t.Fatal(err)
		}
	}
	disp := alert.NewDispatcher(st, slack.New(slack.Config{Token: "xoxb-digest", APIURL: sl.URL}), log, "r", nil)
	drain := func() {
		for {
			more, err := disp.DeliverOne(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				return
			}
		}
	}
	drain()
	msgs := sl.Messages("C-FLAGS")
	if len(msgs) != 1 || msgs[0].Text != "2 stale flags in shop" {
		t.Fatalf("messages: %+v", msgs)
	}
	blocks := string(msgs[0].Blocks)
	for _, want := range []string{"*`dead-flag`* · owner: Alice \\u0026lt;alice@example.com\\u0026gt;", "production: no evaluations for 30 days (none on record)",
		"https://dash.example.com/p/shop/stale"} {
		if !strings.Contains(blocks, want) {
			t.Fatalf("digest blocks lack %q:\n%s", want, blocks)
		}
	}
	if err := d.Run(context.Background(), run.AddDate(0, 0, 7)); err != nil {
		t.Fatal(err)
	}
	drain()
	if n := len(sl.Messages("")); n != 2 {
		t.Fatalf("%d messages after the second week, want 2", n)
	}
}
