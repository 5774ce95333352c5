package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/platform/errs"
)

// upstream is one service the web app talks to through this server.
type upstream struct {
	name   string   // for messages: "flag service"
	flag   string   // the config flag that sets its URL
	base   *url.URL // nil when not configured
	client *http.Client
}

func newUpstream(name, flagName, raw string, headerTimeout time.Duration) *upstream {
	u := &upstream{name: name, flag: flagName, client: &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // loopback services; never through an environment proxy
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: headerTimeout,
			// Accept-Encoding is passed through from the browser, so the transport must not
			// add (and then transparently undo) its own gzip.
			DisableCompression: true,
		},
		// Redirects are the browser's business.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	if raw != "" {
		u.base, _ = url.Parse(strings.TrimRight(raw, "/")) // validated by Config.Validate
	}
	return u
}

// Request headers passed to upstreams. Everything else (cookies above all) stays here.
var forwardRequestHeaders = []string{
	"Authorization", "Content-Type", "Accept", "Accept-Encoding", "If-Match", "If-None-Match",
	"User-Agent", "X-Request-Id", "X-Switchyard-Comment",
}

// Response headers never copied back (hop-by-hop, or set by this server).
var dropResponseHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"Set-Cookie": true, "Cache-Control": true, "Content-Security-Policy": true,
}

// forward sends the request to path on the upstream (with the original query string) and
// streams the answer back. authorization overrides the caller's Authorization header when set.
func (u *upstream) forward(c *fiber.Ctx, path, authorization string) error {
	if u.base == nil {
		return errs.Unavailable(nil, "the %s is not configured on the dashboards server (set -%s)", u.name, u.flag)
	}
	target := *u.base
	target.Path = u.base.Path + path
	target.RawPath = ""
	target.RawQuery = string(c.Request().URI().QueryString())
	var body *bytes.Reader
	if b := c.Body(); len(b) > 0 {
		body = bytes.NewReader(b)
	}
	ctx := c.UserContext()
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, c.Method(), target.String(), body)
	} else {
		req, err = http.NewRequestWithContext(ctx, c.Method(), target.String(), nil)
	}
	if err != nil {
		return errs.Malformed("", "cannot forward this request: %v", err)
	}
	for _, h := range forwardRequestHeaders {
		if v := c.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("X-Forwarded-For", c.IP())
	req.Header.Set("X-Forwarded-Proto", c.Protocol())
	resp, err := u.client.Do(req)
	if err != nil {
		return errs.Unavailable(err, "the %s did not answer at %s", u.name, u.base.Host)
	}
	c.Status(resp.StatusCode)
	for k, vs := range resp.Header {
		if dropResponseHeaders[k] {
			continue
		}
		for i, v := range vs {
			if i == 0 {
				c.Set(k, v)
			} else {
				c.Append(k, v)
			}
		}
	}
	// Streamed: exports can be large and must not be held in memory. fasthttp closes the body.
	c.Response().SetBodyStream(resp.Body, int(resp.ContentLength))
	return nil
}

// get sends a GET to path on the upstream with the given Authorization and returns the status
// and body (at most 8 MiB). Used by the server's own checks, not by the proxy.
func (u *upstream) get(ctx context.Context, path, authorization string) (int, []byte, error) {
	if u.base == nil {
		return 0, nil, fmt.Errorf("the %s is not configured (set -%s)", u.name, u.flag)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base.String()+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 8<<20)); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, buf.Bytes(), nil
}

// cleanPath returns the request's path with dot segments resolved, so that a prefix check on
// it cannot be walked around with "/stats/v1/../../metrics".
func cleanPath(c *fiber.Ctx) string {
	p := string(c.Request().URI().Path()) // decoded and normalised by fasthttp
	if strings.Contains(p, "..") {
		return ""
	}
	return p
}
