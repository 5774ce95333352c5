package api_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPIDescribesEveryRoute fails when a route exists that the OpenAPI document does not
// describe, or the document describes a route that does not exist.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	s := newStack(t)
	r := s.req("GET", "/api/v1/openapi.json", "", nil)
	if r.Status != 200 {
		t.Fatalf("openapi.json served without a token: %d", r.Status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	r.decode(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not OpenAPI 3: %q", doc.OpenAPI)
	}
	param := regexp.MustCompile(`:([a-z]+)`)
	routes := map[string]bool{}
	for _, rt := range s.app.HTTP.GetRoutes(true) {
		if !strings.HasPrefix(rt.Path, "/api/v1/") || rt.Method == "HEAD" {
			continue
		}
		path := param.ReplaceAllString(rt.Path, "{$1}")
		method := strings.ToLower(rt.Method)
		routes[method+" "+path] = true
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("route %s %s is not described in openapi.json", rt.Method, path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !routes[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which does not exist", strings.ToUpper(method), path)
			}
		}
	}
	if len(routes) < 40 {
		t.Fatalf("only %d routes found", len(routes))
	}
}
