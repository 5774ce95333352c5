package app

import (
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/platform/config"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		bad  string // flag named in the error; "" = valid
	}{
		{"defaults", nil, nil, ""},
		{"env overrides", nil, map[string]string{"SWITCHYARD_CLICKHOUSE_ADDR": "ch:9000", "SWITCHYARD_WRITER": "false", "SWITCHYARD_WRITER_BATCH_BYTES": "8388608"}, ""},
		{"tiny batch bytes", []string{"-writer-batch-bytes", "1000"}, nil, "writer-batch-bytes"},
		{"no component", []string{"-collector=false", "-writer=false"}, nil, "collector"},
		{"bad database", []string{"-clickhouse-database", "x; DROP"}, nil, "clickhouse-database"},
		{"bad codec", []string{"-kafka-compression", "brotli"}, nil, "kafka-compression"},
		{"same topics", []string{"-events-topic", "a", "-dlq-topic", "a"}, nil, "events-topic"},
		{"tiny session", []string{"-writer-session-timeout", "1s"}, nil, "writer-session-timeout"},
		{"http addr", []string{"-clickhouse-addr", "nohost"}, nil, "clickhouse-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := Default()
			err := config.Load("ingest", &cfg, tc.args)
			if tc.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v, ok := tc.env["SWITCHYARD_CLICKHOUSE_ADDR"]; ok && cfg.ClickHouseAddr != v {
					t.Fatalf("env not applied: %s", cfg.ClickHouseAddr)
				}
				if _, ok := tc.env["SWITCHYARD_WRITER_BATCH_BYTES"]; ok && cfg.WriterBatchBytes != 8<<20 {
					t.Fatalf("env not applied: writer batch bytes %d", cfg.WriterBatchBytes)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "-"+tc.bad) {
				t.Fatalf("got %v, want an error naming -%s", err, tc.bad)
			}
		})
	}
}
