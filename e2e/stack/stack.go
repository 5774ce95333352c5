// Package stack runs Switchyard's services as real processes for end-to-end tests and
// benchmarks: it builds the binaries from the workspace, starts them on free loopback ports
// against the local Postgres, Kafka and ClickHouse, waits for /readyz, and stops them.
package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "../.."))
}

// Binary builds (once per test process) the service's command and returns its path.
func Binary(t testing.TB, service string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[service]; ok {
		return p
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "switchyard-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	out := filepath.Join(buildDir, service)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+service)
	cmd.Dir = filepath.Join(Root(), service)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", service, err, b)
	}
	built[service] = out
	return out
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Process is a running service.
type Process struct {
	Name string
	URL  string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs a service binary with args (plus -http-addr on a free port) and waits until its
// /readyz answers 200. The process is stopped at cleanup; its log is shown if the test failed.
func Start(t testing.TB, service string, args ...string) *Process {
	t.Helper()
	bin := Binary(t, service)
	addr := FreeAddr(t)
	logPath := filepath.Join(t.TempDir(), service+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "-http-addr", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Name: service, URL: "http://" + addr, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", service, b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited during start-up:\n%s", service, b)
		default:
		}
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s not ready within 60 s:\n%s", service, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 15 s).
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Run runs a service binary's one-off command (e.g. flagsvc bootstrap) and returns its output.
func Run(t testing.TB, service string, args ...string) string {
	t.Helper()
	out, err := exec.Command(Binary(t, service), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", service, strings.Join(args, " "), err, out)
	}
	return string(out)
}

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
