// Package chtest gives the stats module's tests a fresh ClickHouse database with ingest's
// schema, created by the ingest binary's migrate command exactly as deployments do.
package chtest

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// Database creates a database named prefix_<suffix> with ingest's schema, returns a connection
// to it, and drops it when the test ends.
func Database(t testing.TB, prefix string) driver.Conn {
	t.Helper()
	addr := testenv.RequireClickHouse(t)
	_, here, _, _ := runtime.Caller(0) // stats/internal/chtest/chtest.go
	bin := filepath.Join(t.TempDir(), "ingest")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ingest")
	build.Dir = filepath.Join(filepath.Dir(here), "..", "..", "..", "ingest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ingest: %v\n%s", err, out)
	}
	db := prefix + "_" + testenv.Suffix()
	migrate := exec.Command(bin, "migrate", "-clickhouse-addr", addr, "-clickhouse-database", db, "-log-level", "warn")
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("ingest migrate: %v\n%s", err, out)
	}
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Auth: ch.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	return conn
}
