// Package api serves SDKs from the relay's rulesets: the ruleset itself (polling, ETag/304,
// gzip), a server-sent-event stream of rulesets, remote evaluation for browsers and mobile
// apps, and the OpenFeature Remote Evaluation Protocol (OFREP). Every endpoint authenticates
// an SDK key against the hashes in the rulesets; unknown keys get a bare 401.
package api

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Config configures the API.
type Config struct {
	// Heartbeat is the interval of SSE comment heartbeats (the protocol promises at most 15 s).
	Heartbeat time.Duration
	// ServerRate and ClientRate are the per-key request rates (requests per second, burst twice that).
	ServerRate float64
	ClientRate float64
	// CORSOrigins lists the origins browsers may call client endpoints from ("*": any).
	CORSOrigins string
	// NoPatches streams every change as the whole ruleset (put), even to SDKs asking for patches.
	NoPatches bool
	// CaughtUp reports whether the relay has read the ruleset topic to its end; until then an
	// unknown key may belong to an environment not read yet, so it gets 503 instead of 401
	// (which SDKs take as final). Nil means always caught up.
	CaughtUp func() bool
}

// API holds the handlers.
type API struct {
	cfg     Config
	store   *rulesets.Store
	metrics *metrics

	limitMu  sync.Mutex
	limiters map[string]*rate.Limiter
}

type metrics struct {
	streams     prometheus.Gauge
	evaluations *prometheus.CounterVec
	limited     prometheus.Counter
	// delivery is the time from the relay receiving a ruleset to having written it to a stream,
	// one observation per stream per update: the relay's share of propagation.
	delivery prometheus.Histogram
	// events counts the updates written to streams by event: a full ruleset (put) or only
	// what changed (patch).
	events        *prometheus.CounterVec
	puts, patches prometheus.Counter
	// byReason holds evaluations' counters by endpoint and reason, looked up once, not per
	// evaluation (WithLabelValues hashes its labels on every call).
	byReason map[string]map[evaluation.Reason]prometheus.Counter
}

func (m *metrics) counted(endpoint string, r evaluation.Reason) prometheus.Counter {
	if c, ok := m.byReason[endpoint][r]; ok {
		return c
	}
	return m.evaluations.WithLabelValues(endpoint, string(r))
}

const keyLocal = "sdkkey"

// Mount registers the SDK routes.
func Mount(app *fiber.App, cfg Config, store *rulesets.Store, reg prometheus.Registerer) *API {
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	a := &API{cfg: cfg, store: store, limiters: map[string]*rate.Limiter{}, metrics: &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "evalrelay_streams_open", Help: "Open SSE streams."}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evalrelay_evaluations_total", Help: "Remote flag evaluations, by endpoint and reason.",
		}, []string{"endpoint", "reason"}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{Name: "evalrelay_rate_limited_total", Help: "Requests refused by per-key rate limits."}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evalrelay_stream_delivery_seconds",
			Help:    "Time from receiving a ruleset update to writing it to a stream, per stream.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 5},
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evalrelay_stream_events_total", Help: "Ruleset updates written to streams, by event (put: whole ruleset, patch: changes only).",
		}, []string{"event"}),
	}}
	a.metrics.puts, a.metrics.patches = a.metrics.events.WithLabelValues("put"), a.metrics.events.WithLabelValues("patch")
	a.metrics.byReason = map[string]map[evaluation.Reason]prometheus.Counter{}
	for _, endpoint := range []string{"evaluate", "ofrep"} {
		a.metrics.byReason[endpoint] = map[evaluation.Reason]prometheus.Counter{}
		for _, r := range []evaluation.Reason{evaluation.ReasonDisabled, evaluation.ReasonPrerequisiteFailed,
			evaluation.ReasonTargetingMatch, evaluation.ReasonSplit, evaluation.ReasonDefault, evaluation.ReasonError} {
			a.metrics.byReason[endpoint][r] = a.metrics.evaluations.WithLabelValues(endpoint, string(r))
		}
	}
	if reg != nil {
		reg.MustRegister(a.metrics.streams, a.metrics.evaluations, a.metrics.limited, a.metrics.delivery, a.metrics.events, &rulesetCollector{store: store})
	}
	browser := cors.New(cors.Config{
		AllowOrigins:  cfg.CORSOrigins,
		AllowMethods:  "GET,POST,OPTIONS",
		AllowHeaders:  "Authorization,X-API-Key,Content-Type,If-None-Match",
		ExposeHeaders: "ETag,X-Switchyard-Stale,Retry-After",
		MaxAge:        3600,
	})
	// Streams take their connections over (stream.go) and close them themselves.
	app.Server().KeepHijackedConns = true
	sdk := app.Group("/sdk/v1")
	sdk.Get("/ruleset", a.auth(ruleset.KeyServer), a.ruleset)
	sdk.Get("/stream", a.auth(ruleset.KeyServer), a.stream)
	sdk.Post("/evaluate", browser, a.auth(""), a.evaluate)
	sdk.Options("/evaluate", browser)
	ofrep := app.Group("/ofrep/v1")
	ofrep.Post("/evaluate/flags/:key", browser, a.auth(""), a.ofrepOne)
	ofrep.Post("/evaluate/flags", browser, a.auth(""), a.ofrepAll)
	ofrep.Options("/evaluate/flags/:key", browser)
	ofrep.Options("/evaluate/flags", browser)
	ofrep.Get("/configuration", browser, a.auth(""), a.ofrepConfiguration)
	ofrep.Options("/configuration", browser)
	return a
}

// sdkKey reads the key from Authorization (raw or Bearer) or X-API-Key (OFREP).
func sdkKey(c *fiber.Ctx) string {
	h := c.Get(fiber.HeaderAuthorization)
	if h == "" {
		return c.Get("X-API-Key")
	}
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") { // the scheme is case-insensitive
		return strings.TrimSpace(h[7:])
	}
	return strings.TrimSpace(h)
}

// auth authenticates the SDK key; need "" accepts server and client keys.
func (a *API) auth(need ruleset.KeyKind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		key, ok := a.store.Authenticate(sdkKey(c))
		if !ok {
			if a.cfg.CaughtUp != nil && !a.cfg.CaughtUp() {
				c.Set(fiber.HeaderRetryAfter, "1")
				return errs.Unavailable(nil, "the relay is still reading rulesets; retry shortly")
			}
			return errs.Unauthenticated("unknown SDK key")
		}
		if need != "" && key.Kind != need {
			return errs.PermissionDenied("this endpoint needs a server-side SDK key")
		}
		if !a.allow(c, key) {
			a.metrics.limited.Inc()
			c.Set(fiber.HeaderRetryAfter, "1")
			return &errs.Error{Kind: errs.KindRateLimited, Message: "rate limit exceeded for this SDK key"}
		}
		c.Locals(keyLocal, key)
		if a.store.Stale() {
			c.Set("X-Switchyard-Stale", "true")
		}
		return c.Next()
	}
}

func (a *API) allow(c *fiber.Ctx, key rulesets.Key) bool {
	limit := a.cfg.ServerRate
	if key.Kind == ruleset.KeyClient {
		limit = a.cfg.ClientRate
	}
	if limit <= 0 {
		return true
	}
	id := sdkKey(c)
	a.limitMu.Lock()
	l := a.limiters[id]
	if l == nil {
		if len(a.limiters) > 100000 {
			a.limiters = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Limit(limit), int(2*limit)+1)
		a.limiters[strings.Clone(id)] = l
	}
	a.limitMu.Unlock()
	return l.Allow()
}

func keyOf(c *fiber.Ctx) rulesets.Key { return c.Locals(keyLocal).(rulesets.Key) }

// ruleset serves the environment's ruleset, 304 when the ETag matches, gzip when accepted.
func (a *API) ruleset(c *fiber.Ctx) error {
	e := keyOf(c).Entry
	c.Set(fiber.HeaderETag, e.ETag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), e.ETag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	if acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(e.Gzip())
	}
	return c.Send(e.JSON)
}

// etagMatches applies If-None-Match (RFC 9110 13.1.2): a list of entity tags compared weakly
// (W/ ignored), or "*".
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	if header == etag { // the polling SDK's case, without parsing
		return true
	}
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding allows gzip (or *) with a non-zero quality.
func acceptsGzip(header string) bool {
	if header == "" {
		return false
	}
	star := false
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		ok := true
		for p := range strings.SplitSeq(params, ";") {
			if k, v, found := strings.Cut(strings.TrimSpace(p), "="); found && strings.EqualFold(strings.TrimSpace(k), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				ok = err == nil && q > 0
			}
		}
		if coding == "*" {
			star = ok
			continue
		}
		return ok // gzip named explicitly decides, whatever "*" says
	}
	return star
}

// rulesetCollector exports the version and age of every environment's ruleset at scrape time.
type rulesetCollector struct{ store *rulesets.Store }

var (
	versionDesc = prometheus.NewDesc("evalrelay_ruleset_version", "Version of the ruleset served, per environment.", []string{"environment", "project", "key"}, nil)
	ageDesc     = prometheus.NewDesc("evalrelay_ruleset_age_seconds", "Seconds since the served ruleset was generated by the flag service.", []string{"environment", "project", "key"}, nil)
	staleDesc   = prometheus.NewDesc("evalrelay_stale", "1 while the relay serves from its disk cache because Kafka is unreachable.", nil, nil)
)

func (r *rulesetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- versionDesc
	ch <- ageDesc
	ch <- staleDesc
}

func (r *rulesetCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, e := range r.store.Entries() {
		labels := []string{e.EnvID, e.Environment.ProjectKey, e.Environment.Key}
		ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, float64(e.Version), labels...)
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, now.Sub(e.GeneratedAt).Seconds(), labels...)
	}
	stale := 0.0
	if r.store.Stale() {
		stale = 1
	}
	ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, stale)
}
