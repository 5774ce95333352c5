package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/stats/internal/refcases"
)

// The tests run the real command: the test binary re-executes itself with
// STATS_RUN_MAIN=1, and TestMain then runs main() instead of the tests, so stdin, stdout,
// stderr and the exit status are those of the process a user runs.
func TestMain(m *testing.M) {
	if os.Getenv("STATS_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

type result struct {
	stdout, stderr []byte
	status         int
}

func command(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "STATS_RUN_MAIN=1")
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	status := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		status = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running the command: %v", err)
	}
	return result{out.Bytes(), errOut.Bytes(), status}
}

func TestReferenceCases(t *testing.T) {
	cases, err := refcases.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.ID+" "+c.Name, func(t *testing.T) {
			r := command(t, c.Request, c.Command)
			if r.status != 0 || len(r.stderr) != 0 {
				t.Fatalf("exit status %d, stderr %s", r.status, r.stderr)
			}
			for _, p := range c.Check(r.stdout) {
				t.Error(p)
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	tests := []struct {
		name, command, body, field string
	}{
		{"malformed JSON", "analyze", `{"metrics": [`, ""},
		{"unknown kind", "analyze", `{"metrics":[{"key":"m","kind":"median","variants":[{"key":"a","n":1,"sum":1},{"key":"b","n":1,"sum":1}]}]}`, "metrics[0].kind"},
		{"missing field", "analyze", `{"metrics":[{"key":"m","kind":"mean","variants":[{"key":"a","n":10,"sum":1},{"key":"b","n":10,"sum":1,"sum_squares":2}]}]}`, "metrics[0].variants[0].sum_squares"},
		{"negative n", "analyze", `{"metrics":[{"key":"m","kind":"proportion","variants":[{"key":"a","n":10,"sum":1},{"key":"b","n":-3,"sum":1}]}]}`, "metrics[0].variants[1].n"},
		{"alpha out of range", "analyze", `{"alpha":1,"metrics":[{"key":"m","kind":"proportion","variants":[{"key":"a","n":10,"sum":1},{"key":"b","n":10,"sum":1}]}]}`, "alpha"},
		{"one variant", "analyze", `{"metrics":[{"key":"m","kind":"proportion","variants":[{"key":"a","n":10,"sum":1}]}]}`, "metrics[0].variants"},
		{"power without users", "power", `{"mean":1,"variance":1,"effect":0.1}`, "users"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := command(t, []byte(tc.body), tc.command)
			if r.status != 2 {
				t.Fatalf("exit status %d, want 2 (stdout %s)", r.status, r.stdout)
			}
			if len(r.stdout) != 0 {
				t.Errorf("stdout should be empty, got %s", r.stdout)
			}
			var body struct {
				Error struct{ Code, Message, Field string }
			}
			if err := json.Unmarshal(r.stderr, &body); err != nil {
				t.Fatalf("stderr is not the JSON error body: %v: %s", err, r.stderr)
			}
			if body.Error.Code != "invalid_argument" || body.Error.Message == "" || body.Error.Field != tc.field {
				t.Errorf("error = %+v, want code invalid_argument and field %q", body.Error, tc.field)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if got := run(context.Background(), nil, strings.NewReader(""), &out, &errOut); got != 2 {
		t.Errorf("no command: exit %d, want 2", got)
	}
	if got := run(context.Background(), []string{"frobnicate"}, strings.NewReader(""), &out, &errOut); got != 2 {
		t.Errorf("unknown command: exit %d, want 2", got)
	}
	if !strings.Contains(errOut.String(), "usage: stats") {
		t.Errorf("stderr should carry the usage, got %q", errOut.String())
	}
}
