//go:build browser

// Package e2e runs the web app's end-to-end tests in a real browser. The Go side starts the
// services as processes (e2e/stack) on fresh resources of the local stack — flag service,
// ingest (collector + ClickHouse writer), stats (with its results workers) and the
// dashboards server — seeds an owner, a project and an SDK key, and then runs the Playwright
// tests in ../web/e2e (node's test runner, playwright-core driving Debian's Chromium).
//
// Run with dashboards/scripts/test.sh e2e (go test -tags browser -run TestBrowser ./e2e/).
package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/e2e/stack"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

func TestBrowser(t *testing.T) {
	web := filepath.Join(stack.Root(), "dashboards", "web")
	if _, err := os.Stat(filepath.Join(web, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed in %s: run dashboards/scripts/build.sh (npm ci) first", web)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is missing: dashboards/scripts/test.sh installs Debian's chromium")
	}
	if _, err := os.Stat(filepath.Join(web, "dist", "index.html")); err != nil {
		t.Fatal("the web app is not built: run dashboards/scripts/build.sh first")
	}

	dsn := testenv.PostgresDB(t)
	topic := testenv.KafkaTopicName(t, "rulesets")
	events := testenv.KafkaTopicName(t, "events")
	brokers := strings.Join(testenv.KafkaBrokers(), ",")
	chAddr := testenv.RequireClickHouse(t)
	chDB := "dashboards_e2e_" + testenv.Suffix()
	t.Cleanup(func() { dropClickHouse(chAddr, chDB) })
	dir := t.TempDir()

	common := []string{"-pg-dsn", dsn, "-kafka-brokers", brokers, "-rulesets-topic", topic, "-log-level", "warn"}
	ownerFile := filepath.Join(dir, "owner-token")
	stack.Run(t, "flagsvc", append([]string{"bootstrap", "-token-file", ownerFile}, common...)...)
	fs := stack.Start(t, "flagsvc", append(common, "-publish-sweep", "500ms")...)
	owner, err := os.ReadFile(ownerFile)
	if err != nil {
		t.Fatal(err)
	}
	api := stack.API{Base: fs.URL, Token: strings.TrimSpace(string(owner))}

	var svc struct {
		Token string `json:"token"`
	}
	api.Must(t, "POST", "/api/v1/tokens", map[string]any{"kind": "service", "name": "stats", "role": "admin"}, &svc)
	serviceFile := filepath.Join(dir, "service-token")
	if err := os.WriteFile(serviceFile, []byte(svc.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	const project = "shop"
	api.Must(t, "POST", "/api/v1/projects", map[string]any{"key": project, "name": "Shop", "description": "Browser tests"}, nil)
	var key struct {
		Key string `json:"key"`
	}
	api.Must(t, "POST", "/api/v1/projects/"+project+"/environments/production/sdk-keys", map[string]any{"kind": "server", "name": "e2e"}, &key)

	queryToken := randomHex(t)
	ingest := stack.Start(t, "ingest", "-kafka-brokers", brokers, "-rulesets-topic", topic, "-events-topic", events,
		"-dlq-topic", events+".dlq", "-clickhouse-addr", chAddr, "-clickhouse-database", chDB, "-writer-group", "dashboards-e2e-"+testenv.Suffix(),
		"-writer-flush-interval", "200ms", "-query-token", queryToken, "-log-level", "warn")
	stats := stack.Start(t, "stats", "-pg-dsn", dsn, "-clickhouse-addr", chAddr, "-clickhouse-database", chDB,
		"-flagsvc-url", fs.URL, "-flagsvc-token-file", serviceFile, "-results-interval", "1h", "-log-level", "warn")
	dash := stack.Start(t, "dashboards", "-flagsvc-url", fs.URL, "-stats-url", stats.URL, "-ingest-url", ingest.URL,
		"-ingest-query-token", queryToken, "-jobs-url", "", "-log-level", "warn")

	artifacts := os.Getenv("SWITCHYARD_E2E_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(web, "e2e-artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	// SWITCHYARD_E2E_FILES narrows the run while working on one test file (e2e/flags.test.mjs).
	files := strings.Fields(os.Getenv("SWITCHYARD_E2E_FILES"))
	if len(files) == 0 {
		files = []string{"e2e/"}
	}
	cmd := exec.Command("node", append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, files...)...)
	cmd.Dir = web
	cmd.Env = append(os.Environ(),
		"SWITCHYARD_E2E_URL="+dash.URL,
		"SWITCHYARD_E2E_TOKEN="+api.Token,
		"SWITCHYARD_E2E_PROJECT="+project,
		"SWITCHYARD_E2E_SDK_KEY="+key.Key,
		"SWITCHYARD_E2E_INGEST_URL="+ingest.URL,
		"SWITCHYARD_E2E_ARTIFACTS="+artifacts,
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("browser tests failed: %v (screenshots and page logs in %s)", err, artifacts)
	}
	t.Logf("screenshots in %s", artifacts)
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// dropClickHouse removes the test's database through ClickHouse's HTTP interface (plain
// queries work there on 18.16; only clickhouse-go's HTTP protocol does not).
func dropClickHouse(nativeAddr, db string) {
	host := strings.Split(nativeAddr, ":")[0]
	port := os.Getenv("SWITCHYARD_CH_HTTP_PORT")
	if port == "" {
		port = "18123"
	}
	q := url.Values{"query": {fmt.Sprintf("DROP DATABASE IF EXISTS %s", db)}}
	resp, err := http.Post("http://"+host+":"+port+"/?"+q.Encode(), "text/plain", nil)
	if err == nil {
		resp.Body.Close()
	}
}
