package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestConformanceThroughSweval feeds every conformance case to sweval as JSON lines and compares
// each output line with the case's expectation: the command's contract is the conformance suite.
func TestConformanceThroughSweval(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "spec", "testdata", "evaluation", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no conformance suites")
	}
	total := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var suite struct {
			Name    string          `json:"name"`
			Ruleset json.RawMessage `json:"ruleset"`
			Cases   []struct {
				Name    string          `json:"name"`
				Flag    string          `json:"flag"`
				Context json.RawMessage `json:"context"`
				Type    string          `json:"type"`
				Default json.RawMessage `json:"default"`
				Expect  map[string]any  `json:"expect"`
			} `json:"cases"`
		}
		if err := json.Unmarshal(data, &suite); err != nil {
			t.Fatal(err)
		}
		rulesetPath := filepath.Join(t.TempDir(), "ruleset.json")
		if err := os.WriteFile(rulesetPath, suite.Ruleset, 0o600); err != nil {
			t.Fatal(err)
		}
		var in bytes.Buffer
		for _, c := range suite.Cases {
			line, _ := json.Marshal(request{Flag: c.Flag, Context: c.Context, Type: c.Type, Default: c.Default})
			in.Write(line)
			in.WriteByte('\n')
		}
		var out, errOut bytes.Buffer
		if code := run([]string{"--ruleset", rulesetPath}, &in, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", suite.Name, code, errOut.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != len(suite.Cases) {
			t.Fatalf("%s: %d output lines for %d inputs", suite.Name, len(lines), len(suite.Cases))
		}
		for i, c := range suite.Cases {
			total++
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
				t.Fatalf("%s/%s: %v", suite.Name, c.Name, err)
			}
			if got["flag"] != c.Flag {
				t.Errorf("%s/%s: flag %v", suite.Name, c.Name, got["flag"])
			}
			delete(got, "flag")
			if !reflect.DeepEqual(got, c.Expect) {
				t.Errorf("%s/%s:\n got %v\nwant %v", suite.Name, c.Name, got, c.Expect)
			}
		}
	}
	if total < 300 {
		t.Errorf("only %d cases", total)
	}
}

func TestSwevalInputErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(nil, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Errorf("without --ruleset: exit %d", code)
	}
	if code := run([]string{"--ruleset", filepath.Join(t.TempDir(), "missing.json")}, strings.NewReader(""), &out, &errOut); code != 1 {
		t.Errorf("missing ruleset: exit %d", code)
	}
	path := filepath.Join(t.TempDir(), "rs.json")
	_ = os.WriteFile(path, []byte(`{"schema_version":1,"flags":[],"segments":[]}`), 0o600)
	out.Reset()
	if code := run([]string{"--ruleset", path}, strings.NewReader("not json\n\n{\"flag\":\"x\",\"context\":{\"key\":\"a\"}}\n"), &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := `{"flag":"","value":null,"variation":null,"reason":"ERROR","error_code":"GENERAL"}
{"flag":"x","value":null,"variation":null,"reason":"ERROR","error_code":"FLAG_NOT_FOUND"}
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
