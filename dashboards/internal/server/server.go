// Package server is the dashboards' HTTP server: it serves the built web app (a single-page
// app, every page path answers index.html) and proxies the services the app talks to, so the
// browser only ever talks to one origin:
//
//	/api/v1/*         → flag service /api/v1/*        (Authorization passed through)
//	/stats/v1/*       → stats service /v1/*           (Authorization passed through)
//	/jobs/v1/*        → jobs service /v1/*            (Authorization passed through)
//	/usage/{endpoint} → ingest /v1/usage/{endpoint}   (after checking the caller's API token;
//	                                                   ingest gets its own query token)
//
// Every response carries the security headers (a strict Content-Security-Policy among them);
// proxied API answers are never cached. The API token lives in the browser's sessionStorage
// and travels in the Authorization header; this server keeps no session and sets no cookie.
package server

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

// ContentSecurityPolicy is sent with every response. The app loads only its own scripts and
// styles (no inline script, no eval); React sets style properties through the DOM, which the
// policy allows.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options are New's dependencies.
type Options struct {
	Config   Config
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Dist is the built web app, or nil with DistErr saying why it is missing.
	Dist    fs.FS
	DistErr error
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// New returns the dashboards server's Fiber app.
func New(o Options) (*fiber.App, error) {
	cfg, log := o.Config, o.Logger
	if o.Now == nil {
		o.Now = time.Now
	}
	app := httpapi.New(httpapi.Options{
		Service: "dashboards", Logger: log, Registry: o.Registry, AccessLog: cfg.AccessLog,
		BodyLimit: 64 << 20, // segment CSV imports pass through (up to 1M keys)
		// Bodies are proxied without a write deadline: exports stream for as long as they take.
	})
	app.Use(securityHeaders)

	flagsvc := newUpstream("flag service", "flagsvc-url", cfg.FlagsvcURL, cfg.ProxyTimeout)
	stats := newUpstream("stats service", "stats-url", cfg.StatsURL, cfg.ProxyTimeout)
	jobs := newUpstream("jobs service", "jobs-url", cfg.JobsURL, cfg.ProxyTimeout)
	ingest := newUpstream("ingest service", "ingest-url", cfg.IngestURL, cfg.ProxyTimeout)

	var site *site
	if o.Dist != nil {
		var err error
		if site, err = loadSite(o.Dist); err != nil {
			return nil, fmt.Errorf("load the web app: %w", err)
		}
	}
	checks := health.NewChecks()
	checks.Add("web-app", func(context.Context) error {
		if site == nil {
			return o.DistErr
		}
		return nil
	})
	checks.Add("flagsvc", func(ctx context.Context) error {
		status, _, err := flagsvc.get(ctx, "/healthz", "")
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("flag service /healthz answered %d", status)
		}
		return nil
	})
	health.Mount(app, checks, o.Registry)

	app.All("/api/v1/*", noStore, func(c *fiber.Ctx) error {
		return forwardUnder(c, flagsvc, "/api/v1/", "/api/v1/")
	})
	app.All("/stats/v1/*", noStore, func(c *fiber.Ctx) error {
		return forwardUnder(c, stats, "/stats/v1/", "/v1/")
	})
	app.All("/jobs/v1/*", noStore, func(c *fiber.Ctx) error {
		return forwardUnder(c, jobs, "/jobs/v1/", "/v1/")
	})
	gate := &usageGate{flagsvc: flagsvc, ingest: ingest, token: cfg.IngestQueryToken, ttl: 30 * time.Second, now: o.Now,
		cache: map[[32]byte]visibleEnvs{}}
	app.Get("/usage/:endpoint", noStore, gate.handle)
	for _, prefix := range []string{"/api", "/stats", "/jobs", "/usage"} {
		app.All(prefix+"/*", noStore, func(c *fiber.Ctx) error {
			return errs.NotFound("no such API route: %s %s", c.Method(), c.Path())
		})
	}

	page := func(c *fiber.Ctx) error {
		if site == nil {
			c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
			c.Set(fiber.HeaderCacheControl, "no-store")
			return c.Status(fiber.StatusServiceUnavailable).SendString(missingAssetsPage)
		}
		return site.serve(c)
	}
	app.Get("/*", page)
	app.Head("/*", page)
	if site == nil {
		log.Error("web app missing: serving an explanation instead of pages; /readyz fails until it is built", "err", o.DistErr)
	}
	return app, nil
}

// forwardUnder proxies a request whose path starts with prefix to the upstream, replacing
// prefix with upstreamPrefix.
func forwardUnder(c *fiber.Ctx, u *upstream, prefix, upstreamPrefix string) error {
	p := cleanPath(c)
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok || rest == "" {
		return errs.NotFound("no such API route: %s %s", c.Method(), c.Path())
	}
	return u.forward(c, upstreamPrefix+rest, "")
}

func securityHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", ContentSecurityPolicy)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	return c.Next()
}

// noStore keeps API answers (tokens, SDK keys, configuration) out of every cache.
func noStore(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}
