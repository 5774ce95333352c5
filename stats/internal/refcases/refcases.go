// Package refcases loads the public reference cases of STATS.md §12 from
// stats/testdata/reference.json and checks a response against them. Both the engine's
// tests and the command's tests (which run the real `stats` binary) use it, so the same
// fixture drives every layer.
package refcases

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// RelativeTolerance is the agreement the contract asks for.
const RelativeTolerance = 1e-5

// Case is one reference case.
type Case struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Command string          `json:"command"` // "analyze" or "power"
	Request json.RawMessage `json:"request"`
	// Rounded, when set, is the number of decimals the reference published its values to.
	Rounded *int `json:"rounded"`
	// Expect pairs a path into the response JSON with the expected value (nil for null).
	Expect [][2]json.RawMessage `json:"expect"`
}

type file struct {
	Cases []Case `json:"cases"`
}

// Path is the fixture's location, found from this source file so tests in any package
// can load it.
func Path() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "testdata", "reference.json")
}

// Load reads every case.
func Load() ([]Case, error) {
	data, err := os.ReadFile(Path())
	if err != nil {
		return nil, err
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", Path(), err)
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", Path())
	}
	return f.Cases, nil
}

// Check compares a response body with every expectation of the case and returns one
// message per mismatch (empty when all match).
func (c Case) Check(response []byte) []string {
	var doc any
	if err := json.Unmarshal(response, &doc); err != nil {
		return []string{fmt.Sprintf("response is not JSON: %v: %s", err, response)}
	}
	var problems []string
	for _, e := range c.Expect {
		var path string
		if err := json.Unmarshal(e[0], &path); err != nil {
			problems = append(problems, fmt.Sprintf("bad fixture path %s", e[0]))
			continue
		}
		got, err := Lookup(doc, path)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if msg := c.compare(got, e[1]); msg != "" {
			problems = append(problems, path+": "+msg)
		}
	}
	return problems
}

func (c Case) compare(got any, wantRaw json.RawMessage) string {
	if string(wantRaw) == "null" {
		if got != nil {
			return fmt.Sprintf("got %v, want null", got)
		}
		return ""
	}
	want, err := strconv.ParseFloat(string(wantRaw), 64)
	if err != nil {
		return fmt.Sprintf("bad fixture value %s", wantRaw)
	}
	g, ok := got.(float64)
	if !ok {
		return fmt.Sprintf("got %v, want the number %v", got, want)
	}
	if Matches(g, want, c.Rounded) {
		return ""
	}
	return fmt.Sprintf("got %.12g, want %v (relative error %.3g)", g, want, math.Abs(g-want)/math.Abs(want))
}

// Matches reports whether got agrees with want to RelativeTolerance, or — when the
// reference published want rounded to *decimals decimals — whether got rounds to want.
func Matches(got, want float64, decimals *int) bool {
	diff := math.Abs(got - want)
	if diff <= RelativeTolerance*math.Abs(want) {
		return true
	}
	if decimals != nil {
		half := 0.5 * math.Pow(10, -float64(*decimals))
		return diff <= half*(1+1e-9)
	}
	return false
}

// Lookup resolves a path such as "metrics[0].variants[1].ci[0]" or "risk.treatment" in a
// decoded JSON document.
func Lookup(doc any, path string) (any, error) {
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			obj, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %q is not inside an object", path, name)
			}
			if cur, ok = obj[name]; !ok {
				return nil, fmt.Errorf("%s: no field %q", path, name)
			}
		}
		for rest != "" {
			idxText, after, _ := strings.Cut(rest, "]")
			idx, err := strconv.Atoi(idxText)
			if err != nil {
				return nil, fmt.Errorf("%s: bad index %q", path, idxText)
			}
			arr, ok := cur.([]any)
			if !ok || idx >= len(arr) {
				return nil, fmt.Errorf("%s: index %d out of range", path, idx)
			}
			cur = arr[idx]
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return cur, nil
}
