package app

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
)

// TestOFREPProviderFromNPM runs the off-the-shelf OpenFeature OFREP provider
// (@openfeature/ofrep-provider on @openfeature/server-sdk, in Node) against a real relay.
// `make test` installs its node_modules (npm ci in evalrelay/ofreptest).
func TestOFREPProviderFromNPM(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "../../ofreptest")
	if _, err := os.Stat(filepath.Join(dir, "node_modules/@openfeature/ofrep-provider")); err != nil {
		t.Fatalf("the OFREP provider is not installed: run `npm ci` in %s (make test does)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for this test:", err)
	}
	r, _ := relayServing(t, 1, true)
	server, _ := relaytest.Keys("env1")
	cmd := exec.Command(node, "ofrep.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RELAY_URL="+r.base, "SDK_KEY="+server)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("OFREP provider test failed: %v\n%s", err, out)
	}
	passed := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var line struct {
			OK bool `json:"ok"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.OK {
			passed++
		}
	}
	if passed != 6 {
		t.Fatalf("want 6 passing checks, got %d:\n%s", passed, out)
	}
}
