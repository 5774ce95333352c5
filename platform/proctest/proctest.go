// Package proctest runs Switchyard's services as real processes for integration tests,
// end-to-end tests and load benchmarks: it builds a service's binary from its module in the
// workspace (once per test process), starts `<service> serve` on a free loopback port, waits
// for /readyz, and stops it at cleanup, showing its log tail when the test failed.
package proctest

import (
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

	"github.com/switchyard-io/switchyard/platform/testenv"
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

// Binary builds (once per test process) a service's command, `<service>/cmd/<service>`, and
// returns its path.
func Binary(t testing.TB, service string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[service]; ok {
		return p
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "switchyard-bin-")
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

// Start runs `<service> serve -http-addr <free port> args...` and waits until /readyz answers
// 200. The process is stopped at cleanup; its log tail is shown when the test failed.
func Start(t testing.TB, service string, args ...string) *Process {
	t.Helper()
	return StartEnv(t, service, nil, args...)
}

// StartEnv is Start with extra environment variables ("NAME=value").
func StartEnv(t testing.TB, service string, env []string, args ...string) *Process {
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
	cmd.Env = append(os.Environ(), env...)
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
	testenv.Eventually(t, 90*time.Second, service+" to become ready", func() bool {
		select {
		case <-p.done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited during start-up:\n%s", service, b)
		default:
		}
		resp, err := http.Get(p.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 20 s).
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill stops the process at once (a crash).
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Run runs a one-off command of a service (e.g. flagsvc bootstrap) and returns its output.
func Run(t testing.TB, service string, args ...string) string {
	t.Helper()
	out, err := exec.Command(Binary(t, service), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", service, strings.Join(args, " "), err, out)
	}
	return string(out)
}
