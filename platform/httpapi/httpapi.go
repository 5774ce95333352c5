// Package httpapi builds the Fiber app every Switchyard HTTP service starts from: the uniform
// error body, panic recovery, request metrics and access logs, strict JSON decoding that names
// the offending field, and a lifecycle component that serves until shutdown and then drains.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-io/switchyard/platform/errs"
)

// Options configures New.
type Options struct {
	Service  string
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// BodyLimit is the largest request body accepted, in bytes (default 4 MiB).
	BodyLimit int
	// StreamRequestBody lets handlers read large bodies (CSV imports) as a stream.
	StreamRequestBody bool
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// AccessLog logs every request at debug level (info for 5xx).
	AccessLog bool
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Status maps an error kind to its HTTP status.
func Status(k errs.Kind) int {
	switch k {
	case errs.KindMalformed:
		return fiber.StatusBadRequest
	case errs.KindInvalid:
		return fiber.StatusUnprocessableEntity
	case errs.KindNotFound:
		return fiber.StatusNotFound
	case errs.KindConflict:
		return fiber.StatusConflict
	case errs.KindPreconditionFailed:
		return fiber.StatusPreconditionFailed
	case errs.KindUnauthenticated:
		return fiber.StatusUnauthorized
	case errs.KindPermissionDenied:
		return fiber.StatusForbidden
	case errs.KindRateLimited:
		return fiber.StatusTooManyRequests
	case errs.KindUnavailable:
		return fiber.StatusServiceUnavailable
	case errs.KindTooLarge:
		return fiber.StatusRequestEntityTooLarge
	}
	return fiber.StatusInternalServerError
}

// KindForStatus is the error kind an HTTP status from another Switchyard service stands for: the
// inverse of Status for 4xx, unavailable for any 5xx (the caller may retry), internal otherwise.
func KindForStatus(status int) errs.Kind {
	if status >= 500 {
		return errs.KindUnavailable
	}
	for k := errs.KindInternal; k.Code() != ""; k++ {
		if Status(k) == status {
			return k
		}
	}
	return errs.KindInternal
}

// New returns a Fiber app with Switchyard's error handling, recovery and metrics.
func New(o Options) *fiber.App {
	if o.BodyLimit == 0 {
		o.BodyLimit = 4 << 20
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 120 * time.Second
	}
	log := o.Logger
	app := fiber.New(fiber.Config{
		AppName:               o.Service,
		DisableStartupMessage: true,
		BodyLimit:             o.BodyLimit,
		StreamRequestBody:     o.StreamRequestBody,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		IdleTimeout:           o.IdleTimeout,
		ErrorHandler:          ErrorHandler(log),
	})
	app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
		log.Error("panic serving request", "path", c.Path(), "panic", e)
	}}))
	if o.Registry != nil {
		app.Use(metricsMiddleware(o.Registry))
	}
	if o.AccessLog {
		app.Use(func(c *fiber.Ctx) error {
			start := time.Now()
			err := c.Next()
			status := c.Response().StatusCode()
			if err != nil {
				status = Status(errs.KindOf(err))
				var fe *fiber.Error
				if errors.As(err, &fe) {
					status = fe.Code
				}
			}
			level := slog.LevelDebug
			if status >= 500 {
				level = slog.LevelInfo
			}
			log.Log(c.UserContext(), level, "request", "method", c.Method(), "path", c.Path(),
				"status", status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
			return err
		})
	}
	return app
}

// ErrorHandler writes every error as {"error":{"code","message","field"}} with the status of its
// kind; internal errors are logged and their details hidden.
func ErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var (
			fe  *fiber.Error
			e   *errs.Error
			out ErrorDetail
			st  int
		)
		switch {
		case errors.As(err, &e):
			st = Status(e.Kind)
			out = ErrorDetail{Code: e.Kind.Code(), Message: e.Message, Field: e.Field}
			if e.Kind == errs.KindInternal {
				log.Error("internal error", "method", c.Method(), "path", c.Path(), "err", err)
				out.Message = "internal error"
			}
			if e.Kind == errs.KindUnavailable {
				log.Warn("dependency unavailable", "method", c.Method(), "path", c.Path(), "err", err)
			}
		case errors.As(err, &fe):
			st = fe.Code
			out = ErrorDetail{Code: codeForStatus(fe.Code), Message: fe.Message}
		default:
			log.Error("internal error", "method", c.Method(), "path", c.Path(), "err", err)
			st = fiber.StatusInternalServerError
			out = ErrorDetail{Code: errs.KindInternal.Code(), Message: "internal error"}
		}
		if st == fiber.StatusTooManyRequests || st == fiber.StatusServiceUnavailable {
			if c.GetRespHeader(fiber.HeaderRetryAfter) == "" {
				c.Set(fiber.HeaderRetryAfter, "1")
			}
		}
		return c.Status(st).JSON(ErrorBody{Error: out})
	}
}

func codeForStatus(status int) string {
	switch status {
	case fiber.StatusBadRequest:
		return errs.KindMalformed.Code()
	case fiber.StatusNotFound:
		return errs.KindNotFound.Code()
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestEntityTooLarge:
		return errs.KindTooLarge.Code()
	case fiber.StatusUnauthorized:
		return errs.KindUnauthenticated.Code()
	case fiber.StatusForbidden:
		return errs.KindPermissionDenied.Code()
	case fiber.StatusTooManyRequests:
		return errs.KindRateLimited.Code()
	case fiber.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	}
	if status >= 500 {
		return errs.KindInternal.Code()
	}
	return "error"
}

func metricsMiddleware(reg prometheus.Registerer) fiber.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "HTTP request latency by route and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method"})
	reg.MustRegister(requests, duration)
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			status = Status(errs.KindOf(err))
			var fe *fiber.Error
			if errors.As(err, &fe) {
				status = fe.Code
			}
		}
		// Fiber's strings point into reused buffers: copy before keeping them as labels.
		route, method := strings.Clone(c.Route().Path), strings.Clone(c.Method())
		requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return err
	}
}

// Server serves a Fiber app as a lifecycle component.
type Server struct {
	App  *fiber.App
	Addr string
	// Listener, when set, is used instead of listening on Addr (tests use :0 listeners).
	Listener        net.Listener
	ShutdownTimeout time.Duration
	Log             *slog.Logger
}

// Name implements lifecycle.Component.
func (s *Server) Name() string { return "http " + s.Addr }

// Run serves until ctx is cancelled, then stops accepting and waits for in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	ln := s.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.Addr); err != nil {
			return err
		}
	}
	if s.Log != nil {
		s.Log.Info("listening", "addr", ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- s.App.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	timeout := s.ShutdownTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if err := s.App.ShutdownWithTimeout(timeout); err != nil {
		return err
	}
	return nil
}
