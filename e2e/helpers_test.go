package e2e

import (
	"context"
	"net/http"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

func statusOf(url, key string) int {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// dropClickHouse removes a test's ClickHouse database.
func dropClickHouse(addr, db string) {
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Auth: ch.Auth{Username: "default"}})
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
}
