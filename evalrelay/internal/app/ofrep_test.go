package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestOFREPProviderFromNPM runs the off-the-shelf OpenFeature OFREP provider
// (@openfeature/ofrep-provider on @openfeature/server-sdk, in Node) against a real relay.
// `make test` installs its node_modules (npm ci in evalrelay/ofreptest).
func TestOFREPProviderFromNPM(t *testing.T) {
	dir, node := ofrepNode(t, "ofrep-provider")
	r, _ := relayServing(t, 1, true)
	server, _ := relaytest.Keys("env1")
	cmd := exec.Command(node, "ofrep.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RELAY_URL="+r.base, "SDK_KEY="+server)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("OFREP provider test failed: %v\n%s", err, out)
	}
	if passed := passedChecks(out); passed != 6 {
		t.Fatalf("want 6 passing checks, got %d:\n%s", passed, out)
	}
}

// ofrepNode returns evalrelay/ofreptest and the node binary, failing when the npm package
// (under @openfeature/) is not installed there.
func ofrepNode(t *testing.T, pkg string) (dir, node string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir = filepath.Join(filepath.Dir(file), "../../ofreptest")
	if _, err := os.Stat(filepath.Join(dir, "node_modules/@openfeature", pkg)); err != nil {
		t.Fatalf("@openfeature/%s is not installed: run `npm ci` in %s (make test does)", pkg, dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for this test:", err)
	}
	return dir, node
}

// passedChecks counts the {"ok": true} lines a test script printed.
func passedChecks(out []byte) int {
	passed := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line struct {
			OK bool `json:"ok"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.OK {
			passed++
		}
	}
	return passed
}

// webRuleset is relaytest's ruleset plus "theme", a client-side string flag serving "light",
// or "dark" when dark is set.
func webRuleset(v int64, dark bool) ruleset.Ruleset {
	rs := relaytest.Ruleset("env1", v, true)
	serve := "light"
	if dark {
		serve = "dark"
	}
	rs.Flags = append(rs.Flags, ruleset.Flag{Key: "theme", Kind: ruleset.KindString, Version: v, On: true, OffVariation: "light", ClientSide: true,
		Variations:  []ruleset.Variation{{Key: "light", Value: json.RawMessage(`"light"`)}, {Key: "dark", Value: json.RawMessage(`"dark"`)}},
		Fallthrough: ruleset.Serve{Variation: serve}})
	return rs
}

// TestOFREPWebProviderFromNPM runs the OpenFeature OFREP web provider (the one browsers use:
// @openfeature/ofrep-web-provider on @openfeature/web-sdk, in Node) against a real relay with a
// client key: bulk evaluation, a server-only flag hidden, context changes, an unchanged poll
// answered 304, and a new ruleset version picked up by polling with PROVIDER_CONFIGURATION_CHANGED.
func TestOFREPWebProviderFromNPM(t *testing.T) {
	dir, node := ofrepNode(t, "ofrep-web-provider")
	name, prod := topic(t)
	produceRuleset(t, prod, webRuleset(1, false))
	r := startRelay(t, testConfig(t, name, t.TempDir()))
	r.waitVersion(t, "env1", 1)
	r.waitCaughtUp(t)
	_, client := relaytest.Keys("env1")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ofrep-web.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RELAY_URL="+r.base, "SDK_KEY="+client)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var sent []string // the request headers the provider sends
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out.Write(sc.Bytes())
		out.WriteByte('\n')
		var line struct {
			Ready   bool     `json:"ready"`
			Headers []string `json:"headers"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Ready {
			sent = line.Headers
			produceRuleset(t, prod, webRuleset(2, true))
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("OFREP web provider test failed: %v\n%s%s", err, out.String(), stderr.String())
	}
	if passed := passedChecks(out.Bytes()); passed != 7 {
		t.Fatalf("want 7 passing checks, got %d:\n%s%s", passed, out.String(), stderr.String())
	}

	// In a browser those requests are cross-origin: the preflight must allow every header the
	// provider sent, and the answer must expose the ETag it polls with.
	resp, _ := get(t, "OPTIONS", r.base+"/ofrep/v1/evaluate/flags", "", "", "Origin", "https://shop.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", strings.Join(sent, ","))
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range sent {
		if !strings.Contains(allowed, strings.ToLower(h)) {
			t.Errorf("preflight does not allow %q (sent by the provider): %v", h, resp.Header)
		}
	}
	resp, _ = get(t, "POST", r.base+"/ofrep/v1/evaluate/flags", client, `{"context":{"targetingKey":"u1"}}`, "Origin", "https://shop.example")
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers")), "etag") {
		t.Errorf("bulk evaluation from a browser: %d, ETag not exposed: %v", resp.StatusCode, resp.Header)
	}
}
