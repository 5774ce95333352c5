package app

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/config"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		bad  string // the flag the error names
	}{
		{name: "defaults"},
		{name: "everything from the environment", env: map[string]string{"SWITCHYARD_GUARDRAIL_INTERVAL": "30s",
			"SWITCHYARD_FLAGSVC_TOKEN_FILE": "/run/secrets/jobs", "SWITCHYARD_STALE_DIGEST_SCHEDULE": "30 8 * * FRI"}},
		{name: "both token sources", args: []string{"-flagsvc-token", "sy_svc_x", "-flagsvc-token-file", "/tmp/t"}, bad: "flagsvc-token-file"},
		{name: "bad digest schedule", args: []string{"-stale-digest-schedule", "every monday"}, bad: "stale-digest-schedule"},
		{name: "guardrail interval too short", args: []string{"-guardrail-interval", "100ms"}, bad: "guardrail-interval"},
		{name: "scheduler slower than a minute", args: []string{"-scheduler-interval", "2m"}, bad: "scheduler-interval"},
		{name: "alpha out of range", args: []string{"-guardrail-alpha", "0.7"}, bad: "guardrail-alpha"},
		{name: "bad flagsvc url", args: []string{"-flagsvc-url", "flagsvc:8080"}, bad: "flagsvc-url"},
		{name: "bad database name", args: []string{"-clickhouse-database", "drop table"}, bad: "clickhouse-database"},
		{name: "bad channel", args: []string{"-slack-default-channel", "#on call"}, bad: "slack-default-channel"},
		{name: "stale days out of range", args: []string{"-stale-no-evaluations-days", "0"}, bad: "stale-no-evaluations-days"},
		{name: "log level", args: []string{"-log-level", "loud"}, bad: "log-level"},
		{name: "no stats url is fine", args: []string{"-stats-url", "", "-dashboards-url", ""}},
		{name: "event retention from the environment", env: map[string]string{"SWITCHYARD_EVENT_RETENTION": "9480h"}},
		{name: "event retention at its minimum", args: []string{"-event-retention", "840h"}},
		{name: "event retention 0 keeps forever", args: []string{"-event-retention", "0"}},
		{name: "event retention below the minimum", args: []string{"-event-retention", "839h"}, bad: "event-retention"},
		{name: "event retention of a week", env: map[string]string{"SWITCHYARD_EVENT_RETENTION": "168h"}, bad: "event-retention"},
		{name: "negative event retention", args: []string{"-event-retention", "-1h"}, bad: "event-retention"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var cfg Config
			err := config.Load("jobs", &cfg, tc.args)
			if tc.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "-"+tc.bad+" ") {
				t.Fatalf("err = %v, want one naming -%s", err, tc.bad)
			}
		})
	}
}

// TestSecretsStayOutOfTheDescription: the start-up log line never carries the tokens.
func TestSecretsStayOutOfTheDescription(t *testing.T) {
	var cfg Config
	if err := config.Load("jobs", &cfg, []string{"-flagsvc-token", "sy_svc_abc_topsecret", "-slack-token", "xoxb-topsecret"}); err != nil {
		t.Fatal(err)
	}
	d := cfg.Describe()
	if strings.Contains(d, "topsecret") || !strings.Contains(d, "token=true") || !strings.Contains(d, "slack=true") {
		t.Fatalf("description: %s", d)
	}
}

// TestEventRetentionDefaultsToForever: without the flag nothing is deleted; the variable sets it.
func TestEventRetentionDefaultsToForever(t *testing.T) {
	var cfg Config
	if err := config.Load("jobs", &cfg, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.EventRetention != 0 {
		t.Fatalf("default event retention %s, want 0 (keep forever)", cfg.EventRetention)
	}
	t.Setenv("SWITCHYARD_EVENT_RETENTION", "9480h")
	cfg = Config{}
	if err := config.Load("jobs", &cfg, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.EventRetention != 9480*time.Hour {
		t.Fatalf("event retention %s from SWITCHYARD_EVENT_RETENTION=9480h", cfg.EventRetention)
	}
}
