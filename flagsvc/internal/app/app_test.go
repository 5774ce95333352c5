package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

func TestConfigValidationNamesTheFlag(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		flag string
	}{
		"no brokers":       {map[string]string{"SWITCHYARD_KAFKA_BROKERS": " , "}, "kafka-brokers"},
		"bad log level":    {map[string]string{"SWITCHYARD_LOG_LEVEL": "loud"}, "log-level"},
		"one connection":   {map[string]string{"SWITCHYARD_PG_MAX_CONNS": "1"}, "pg-max-conns"},
		"too-eager sweeps": {map[string]string{"SWITCHYARD_PUBLISH_SWEEP": "1ms"}, "publish-sweep"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var c Config
			err := config.Load("flagsvc", &c, nil)
			if err == nil || !strings.Contains(err.Error(), "-"+tc.flag) {
				t.Fatalf("want an error naming -%s, got %v", tc.flag, err)
			}
		})
	}
	var c Config
	if err := config.Load("flagsvc", &c, []string{"-http-addr", ":9999"}); err != nil || c.HTTPAddr != ":9999" || c.RulesetTopic != "switchyard.rulesets" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// TestBootstrapIsIdempotent: the first run writes a working owner token; the second keeps it.
func TestBootstrapIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cfg Config
	if err := config.Load("flagsvc", &cfg, []string{"-pg-dsn", testenv.PostgresDB(t), "-kafka-brokers", strings.Join(testenv.KafkaBrokers(), ",")}); err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), health.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	file := filepath.Join(t.TempDir(), "admin-token")
	b := BootstrapConfig{Config: &cfg, OrgKey: "demo", OrgName: "Demo", Email: "owner@example.com", TokenFile: file}
	var out bytes.Buffer
	if err := Bootstrap(ctx, a, b, &out); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(file)
	if info, _ := os.Stat(file); info.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", info.Mode().Perm())
	}
	p, err := a.Tokens.Authenticate(ctx, strings.TrimSpace(string(first)))
	if err != nil || p.Role != "owner" {
		t.Fatalf("bootstrap token: %+v %v", p, err)
	}
	if err := Bootstrap(ctx, a, b, &out); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(file)
	if string(first) != string(second) || !strings.Contains(out.String(), "already holds") {
		t.Fatalf("second bootstrap replaced a working token: %s", out.String())
	}
	var owners int
	if err := a.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE role = 'owner'`).Scan(&owners); err != nil || owners != 1 {
		t.Fatalf("owners: %d %v", owners, err)
	}
}
