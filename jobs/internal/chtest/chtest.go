// Package chtest gives tests a fresh ClickHouse database on the local stack with the ingest
// service's schema: it applies the ingest module's goose migrations (their "Up" sections)
// read from the workspace, so the tests always run against the schema ingest ships.
package chtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// MigrationsDir is the ingest service's ClickHouse migrations in the workspace.
func MigrationsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "../../../ingest/internal/store/clickhouse/migrations")
}

// Statements returns the DDL statements of the migrations' Up sections, in order.
func Statements(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(MigrationsDir(), "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ingest migrations in %s: %v", MigrationsDir(), err)
	}
	sort.Strings(files)
	var out []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		if i := strings.Index(text, "-- +goose Up"); i >= 0 {
			text = text[i+len("-- +goose Up"):]
		}
		if i := strings.Index(text, "-- +goose Down"); i >= 0 {
			text = text[:i]
		}
		var kept []string
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "--") {
				continue
			}
			kept = append(kept, line)
		}
		for _, stmt := range strings.Split(strings.Join(kept, "\n"), ";") {
			if s := strings.TrimSpace(stmt); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// Database creates a fresh database with the ingest schema, drops it at cleanup, and returns
// a connection to it and its name.
func Database(t testing.TB) (driver.Conn, string) {
	t.Helper()
	addr := testenv.RequireClickHouse(t)
	name := "jobs_test_" + testenv.Suffix()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := ch.Open(&ch.Options{Protocol: ch.Native, Addr: []string{addr}, Auth: ch.Auth{Database: "default", Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create ClickHouse database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		admin.Close()
	})
	conn, err := ch.Open(&ch.Options{Protocol: ch.Native, Addr: []string{addr}, Auth: ch.Auth{Database: name, Username: "default"},
		MaxOpenConns: 8, ReadTimeout: 120 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, stmt := range Statements(t) {
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("ingest migration statement failed: %v\n%s", err, stmt)
		}
	}
	return conn, name
}
