// Package stacktest runs Switchyard's services as real processes for the jobs service's
// integration and end-to-end tests (through platform/proctest: built from the workspace, started
// on free loopback ports against the local Postgres, Kafka and ClickHouse, stopped at cleanup),
// with a JSON client and a flag service bootstrapped for each test.
package stacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/platform/proctest"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

// The processes are platform/proctest's.
type Process = proctest.Process

var (
	Root     = proctest.Root
	Start    = proctest.Start
	StartEnv = proctest.StartEnv
	Run      = proctest.Run
)

// API is a small JSON client.
type API struct {
	Base, Token string
}

// Response is an answer: status, headers and raw body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Do sends a request with a JSON body (nil for none) and extra headers (name, value, ...).
func (a API) Do(t testing.TB, method, path string, in any, headers ...string) Response {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Must sends a request, fails the test unless it answered 2xx, and decodes the answer.
func (a API) Must(t testing.TB, method, path string, in, out any) {
	t.Helper()
	r := a.Do(t, method, path, in)
	if r.Status >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	if out != nil && len(r.Body) > 0 {
		r.Decode(t, out)
	}
}

// FlagService is a running flag service with its owner's API and its Postgres DSN, Kafka
// rulesets topic.
type FlagService struct {
	*Process
	Owner  API
	DSN    string
	Topic  string
	common []string
}

// StartFlagService bootstraps and starts a flag service on a fresh database and topic.
func StartFlagService(t testing.TB) *FlagService {
	t.Helper()
	dsn := testenv.PostgresDB(t)
	topic := testenv.KafkaTopicName(t, "rulesets")
	common := []string{"-pg-dsn", dsn, "-kafka-brokers", strings.Join(testenv.KafkaBrokers(), ","), "-rulesets-topic", topic, "-log-level", "warn"}
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	Run(t, "flagsvc", append([]string{"bootstrap", "-token-file", tokenFile}, common...)...)
	p := Start(t, "flagsvc", append(common, "-publish-sweep", "500ms")...)
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return &FlagService{Process: p, Owner: API{Base: p.URL, Token: strings.TrimSpace(string(token))}, DSN: dsn, Topic: topic, common: common}
}

// ServiceToken creates a service token with a role (and optional project/environment scope)
// and returns its secret.
func (f *FlagService) ServiceToken(t testing.TB, name, role, project, env string) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	in := map[string]any{"kind": "service", "name": name, "role": role}
	if project != "" {
		in["project"] = project
	}
	if env != "" {
		in["environment"] = env
	}
	f.Owner.Must(t, "POST", "/api/v1/tokens", in, &tok)
	if tok.Token == "" {
		t.Fatal("no token secret in the answer")
	}
	return tok.Token
}

// As returns an API client of the flag service with another token.
func (f *FlagService) As(token string) API { return API{Base: f.URL, Token: token} }

// Path helpers.
func ConfigPath(project, flag, env string) string {
	return fmt.Sprintf("/api/v1/projects/%s/flags/%s/environments/%s", project, flag, env)
}
