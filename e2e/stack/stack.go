// Package stack runs Switchyard's services as real processes for end-to-end tests and
// benchmarks (through platform/proctest: built from the workspace, started on free loopback
// ports against the local Postgres, Kafka and ClickHouse, stopped at cleanup), and gives them
// a small JSON client.
package stack

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/apiclient"
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

// Do sends a JSON request, decodes a JSON answer into out, and returns the status; statuses of
// 300 and more are errors naming the request, the status and the answer.
func (a API) Do(ctx context.Context, method, path string, in, out any) (int, error) {
	return (&apiclient.Client{Base: a.Base, Token: a.Token, HTTP: http.DefaultClient}).Do(ctx, method, path, in, out)
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
