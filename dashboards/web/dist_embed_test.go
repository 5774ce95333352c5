package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestBuiltWebAppIsEmbedded needs the built web app: it fails (never skips) when the binary
// would ship without it. The server's own tests use an in-memory app and run without Node.
func TestBuiltWebAppIsEmbedded(t *testing.T) {
	dist, err := Dist()
	if err != nil {
		t.Fatalf("%v\n(the dashboards server would start without pages; `make test` builds the web app first)", err)
	}
	index, err := fs.ReadFile(dist, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(index)
	// Every script and stylesheet index.html names is in the binary.
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html names %d assets, want at least its script and stylesheet:\n%s", len(refs), html)
	}
	for _, r := range refs {
		if _, err := fs.Stat(dist, strings.TrimPrefix(r[1], "/")); err != nil {
			t.Errorf("index.html names %s, which is not embedded", r[1])
		}
	}
	// The Content-Security-Policy allows no inline script: index.html must have none.
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, `src="`) {
			t.Errorf("inline script in index.html (the CSP would block it): %s", tag)
		}
	}
}
