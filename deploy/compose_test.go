// Package deploy checks the deployment files against the code: Docker cannot run on our own
// machines, so docker-compose.yml and the Dockerfiles are verified by reading them.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type compose struct {
	Services map[string]struct {
		Image       string `yaml:"image"`
		Build       *struct{ Context, Dockerfile string }
		Environment map[string]any `yaml:"environment"`
		Ports       []string       `yaml:"ports"`
		Healthcheck map[string]any `yaml:"healthcheck"`
		DependsOn   map[string]any `yaml:"depends_on"`
		Volumes     []string       `yaml:"volumes"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func root(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("..")
	return dir
}

// flagsOf collects every flag name a service registers (fs.XxxVar(&..., "name", ...)).
func flagsOf(t *testing.T, dirs ...string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`fs\.[A-Za-z0-9]+Var\([^,]+,\s*"([a-z0-9-]+)"`)
	flags := map[string]bool{}
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, _ := os.ReadFile(path)
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				flags[m[1]] = true
			}
			return nil
		})
	}
	return flags
}

func TestComposeMatchesTheCode(t *testing.T) {
	top := root(t)
	raw, err := os.ReadFile(filepath.Join(top, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	infra := map[string]*regexp.Regexp{
		"postgres":   regexp.MustCompile(`^postgres:(1[6-9]|[2-9][0-9])`),
		"kafka":      regexp.MustCompile(`^apache/kafka:4\.`),
		"clickhouse": regexp.MustCompile(`^clickhouse/clickhouse-server:\d+\.\d+`),
	}
	for name, re := range infra {
		s, ok := c.Services[name]
		if !ok || !re.MatchString(s.Image) || s.Healthcheck == nil {
			t.Errorf("%s: want image matching %s with a healthcheck, got %q", name, re, s.Image)
		}
	}
	built := 0
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		built++
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(top, name, "cmd", name, "main.go")); err != nil {
				t.Fatalf("no %s/cmd/%s in the repository", name, name)
			}
			want := "deploy/docker/" + name + ".Dockerfile"
			if s.Build.Dockerfile != want || s.Build.Context != "." {
				t.Fatalf("build: %+v, want context . and %s", *s.Build, want)
			}
			df, err := os.ReadFile(filepath.Join(top, want))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(df), "./"+name+"/cmd/"+name) || !strings.Contains(string(df), "HEALTHCHECK") {
				t.Fatalf("%s does not build ./%s/cmd/%s with a healthcheck", want, name, name)
			}
			// The published port is the one the service listens on by default and exposes.
			if len(s.Ports) != 1 {
				t.Fatalf("ports: %v", s.Ports)
			}
			port := s.Ports[0][strings.LastIndex(s.Ports[0], ":")+1:]
			if _, err := strconv.Atoi(port); err != nil || !strings.Contains(string(df), "EXPOSE "+port) {
				t.Fatalf("port %s not exposed by %s", port, want)
			}
			if addr, _ := s.Environment["SWITCHYARD_HTTP_ADDR"].(string); addr != ":"+port {
				t.Fatalf("SWITCHYARD_HTTP_ADDR %q does not match port %s", addr, port)
			}
			src := filepath.Join(top, name)
			if !codeMentions(t, src, `":`+port+`"`) && !codeMentions(t, src, `:`+port+`"`) {
				t.Fatalf("%s's code has no default listen address on port %s", name, port)
			}
			// Every SWITCHYARD_* variable given to the service is one of its flags.
			flags := flagsOf(t, src)
			for k := range s.Environment {
				flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "SWITCHYARD_"), "_", "-"))
				if !flags[flag] {
					t.Errorf("%s sets %s, but %s has no -%s flag", name, k, name, flag)
				}
			}
		})
	}
	if built < 4 {
		t.Fatalf("only %d services are built by compose", built)
	}
}

func codeMentions(t *testing.T, dir, s string) bool {
	found := false
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || found || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, _ := os.ReadFile(path)
		found = strings.Contains(string(src), s)
		return nil
	})
	return found
}
