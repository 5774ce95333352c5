package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/testenv"
)

// TestClickHouseQueriesAreBounded: the results workers' ClickHouse connection sends
// max_execution_time and max_memory_usage with every query, and the server (18.16 included)
// enforces them: a query over the memory limit fails with ClickHouse's own error.
func TestClickHouseQueriesAreBounded(t *testing.T) {
	ctx := context.Background()
	cfg := Config{ClickHouseAddr: testenv.RequireClickHouse(t), ClickHouseDatabase: "default", ClickHouseUser: "default",
		ClickHouseMaxExecutionTime: 7 * time.Second, ClickHouseMaxMemoryUsage: 20 << 20, ResultsConcurrency: 4}
	conn, err := openClickHouse(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for name, want := range map[string]string{"max_execution_time": "7", "max_memory_usage": "20971520"} {
		var got string
		if err := conn.QueryRow(ctx, `SELECT value FROM system.settings WHERE name = ?`, name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %s on the workers' connection, want %s", name, got, want)
		}
	}
	var n uint64
	err = conn.QueryRow(ctx, `SELECT uniqExact(number) FROM numbers(10000000)`).Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "Memory limit") {
		t.Fatalf("a query over max_memory_usage: %d, %v; want ClickHouse's memory limit error", n, err)
	}
}
