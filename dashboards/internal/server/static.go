package server

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"mime"
	"path"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// asset is one file of the built web app, held in memory with its gzip encoding.
type asset struct {
	body, gz    []byte
	contentType string
	// immutable: Vite puts a content hash in every name under assets/, so those files can be
	// cached for a year; index.html must be revalidated on every load.
	immutable bool
}

// site serves the single-page app: files by path, index.html for every other page path.
type site struct {
	files map[string]*asset // by path without the leading slash
	index *asset
}

// loadSite reads every file of dist into memory and compresses the compressible ones once,
// at start-up, instead of on every request.
func loadSite(dist fs.FS) (*site, error) {
	s := &site{files: map[string]*asset{}}
	err := fs.WalkDir(dist, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(p, ".vite/") { // Vite's build manifest: for the budget check, not for browsers
			return nil
		}
		body, err := fs.ReadFile(dist, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		a := &asset{body: body, contentType: ct, immutable: strings.HasPrefix(p, "assets/")}
		if compressible(ct) && len(body) > 512 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(body)
			_ = zw.Close()
			if buf.Len() < len(body) {
				a.gz = buf.Bytes()
			}
		}
		s.files[p] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.index = s.files["index.html"]
	return s, nil
}

func compressible(contentType string) bool {
	for _, p := range []string{"text/", "application/javascript", "application/json", "image/svg+xml", "application/manifest+json"} {
		if strings.HasPrefix(contentType, p) {
			return true
		}
	}
	return false
}

// serve answers GET and HEAD for the app's files and pages.
func (s *site) serve(c *fiber.Ctx) error {
	p := strings.TrimPrefix(cleanPath(c), "/")
	a, ok := s.files[p]
	if !ok || p == "index.html" {
		if strings.HasPrefix(p, "assets/") || path.Ext(p) != "" && p != "index.html" {
			// A missing hashed file is a stale page asking for an old build: 404, not the app.
			return fiber.NewError(fiber.StatusNotFound, "no such file: /"+p)
		}
		a = s.index
	}
	return s.write(c, a)
}

func (s *site) write(c *fiber.Ctx, a *asset) error {
	c.Set(fiber.HeaderContentType, a.contentType)
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if a.immutable {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	body := a.body
	if a.gz != nil && acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		body = a.gz
	}
	if c.Method() == fiber.MethodHead {
		c.Set(fiber.HeaderContentLength, strconv.Itoa(len(body)))
		return nil
	}
	return c.Send(body)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (and not with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.TrimSpace(name)
		if !strings.EqualFold(name, "gzip") && name != "*" {
			continue
		}
		q := strings.TrimSpace(params)
		if v, ok := strings.CutPrefix(q, "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// missingAssetsPage is what the server shows instead of the app when the binary was built
// without it: a page that says so, never a blank screen.
const missingAssetsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard dashboards: web app not built</title></head>
<body>
<h1>The web app is not built into this server</h1>
<p>This dashboards binary was compiled before <code>dashboards/web/dist</code> existed, so it has no pages to serve.
The API proxies still work.</p>
<p>Build the web app and then this binary again:</p>
<pre>dashboards/scripts/build.sh
cd dashboards &amp;&amp; go build ./cmd/dashboards</pre>
</body></html>`
