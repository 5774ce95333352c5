// Package stack runs Switchyard's services as real processes for end-to-end tests and
// benchmarks (through platform/proctest: built from the workspace, started on free loopback
// ports against the local Postgres, Kafka and ClickHouse, stopped at cleanup), and gives them
// a small JSON client.
package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/proctest"
)

// The processes are platform/proctest's.
type Process = proctest.Process

var (
	Root  = proctest.Root
	Start = proctest.Start
	Run   = proctest.Run
)

// API is a small JSON client of the flag service.
type API struct {
	Base, Token string
}

// Do sends a JSON request, decodes a JSON answer into out, and returns the status.
func (a API) Do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}

// Must is Do that fails the test on any error.
func (a API) Must(t testing.TB, method, path string, in, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Do(ctx, method, path, in, out); err != nil {
		t.Fatal(err)
	}
}
