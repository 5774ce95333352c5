// Package http is the stats service's HTTP transport: POST /v1/analyze and POST /v1/power
// with the JSON contract of STATS.md §11, plus the operational endpoints every service
// serves (/healthz, /readyz, /metrics). It translates between HTTP and the engine and knows
// no statistics: an invalid request becomes 400 with the uniform error body naming the
// field, exactly the body `stats analyze` writes to stderr.
package http

import (
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/health"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/stats/engine"
)

// DefaultAddr is the stats service's listen address.
const DefaultAddr = ":8083"

// Config configures `stats serve`. Every field has a flag and a SWITCHYARD_* variable.
type Config struct {
	HTTPAddr        string
	LogLevel        string
	ShutdownTimeout time.Duration
	// BodyLimit is the largest request accepted, in bytes. A 20-metric × 4-variant
	// request is about 20 KiB; the default leaves room for thousands of metrics.
	BodyLimit int
	AccessLog bool
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", DefaultAddr, "listen address of the HTTP API")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	fs.IntVar(&c.BodyLimit, "body-limit", 8<<20, "largest accepted request body, in bytes")
	fs.BoolVar(&c.AccessLog, "access-log", false, "log every request (debug level)")
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	switch {
	case strings.TrimSpace(c.HTTPAddr) == "":
		return config.Invalid("http-addr", "must not be empty")
	case !validLogLevel(c.LogLevel):
		return config.Invalid("log-level", "unknown level %q (debug, info, warn, error)", c.LogLevel)
	case c.ShutdownTimeout <= 0:
		return config.Invalid("shutdown-timeout", "must be positive, got %s", c.ShutdownTimeout)
	case c.BodyLimit < 1024:
		return config.Invalid("body-limit", "must be at least 1024 bytes, got %d", c.BodyLimit)
	}
	return nil
}

func validLogLevel(level string) bool {
	switch strings.ToLower(level) {
	case "debug", "info", "warn", "warning", "error":
		return true
	}
	return false
}

// New returns the service's Fiber app: the analysis routes and the operational endpoints.
// The service has no dependencies, so it is ready as soon as it listens.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry) *fiber.App {
	app := httpapi.New(httpapi.Options{Service: "stats", Logger: log, Registry: reg, BodyLimit: cfg.BodyLimit, AccessLog: cfg.AccessLog})
	health.Mount(app, health.NewChecks(), reg)
	Mount(app, newMetrics(reg))
	return app
}

// Mount adds POST /v1/analyze and POST /v1/power to r.
func Mount(r fiber.Router, m *Metrics) {
	r.Post("/v1/analyze", func(c *fiber.Ctx) error {
		return respond(c, func(body []byte) (any, error) {
			req, err := engine.DecodeRequest(body)
			if err != nil {
				return nil, err
			}
			res, err := engine.Analyze(req)
			if err == nil {
				m.observe(res)
			}
			return res, err
		})
	})
	r.Post("/v1/power", func(c *fiber.Ctx) error {
		return respond(c, func(body []byte) (any, error) {
			req, err := engine.DecodePowerRequest(body)
			if err != nil {
				return nil, err
			}
			return engine.Power(req)
		})
	})
}

func respond(c *fiber.Ctx, handle func([]byte) (any, error)) error {
	ct := strings.ToLower(string(c.Request().Header.ContentType()))
	if ct != "" && !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return errs.Malformed("Content-Type", "expected application/json, got %q", ct)
	}
	res, err := handle(c.Body())
	if err != nil {
		var inv *engine.InvalidError
		if errors.As(err, &inv) {
			return errs.Malformed(inv.Field, "%s", inv.Message)
		}
		return errs.Internal(err, "analysis failed")
	}
	out, err := json.Marshal(res)
	if err != nil {
		return errs.Internal(err, "encoding the response")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(out)
}

// Metrics are the service's own Prometheus series (request counts and latencies come
// from the platform middleware).
type Metrics struct {
	comparisons   prometheus.Counter
	variantErrors *prometheus.CounterVec
}

// NewMetrics registers the service's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics { return newMetrics(reg) }

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		comparisons: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stats_comparisons_total", Help: "Treatment-versus-control comparisons analysed.",
		}),
		variantErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stats_variant_errors_total", Help: "Comparisons that could not be computed, by error code.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.comparisons, m.variantErrors)
	return m
}

func (m *Metrics) observe(res engine.Response) {
	if m == nil {
		return
	}
	for _, metric := range res.Metrics {
		for _, v := range metric.Variants {
			if v.Control {
				continue
			}
			m.comparisons.Inc()
			if v.Error != nil {
				m.variantErrors.WithLabelValues(v.Error.Code).Inc()
			}
		}
	}
}
