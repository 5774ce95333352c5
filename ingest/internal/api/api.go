// Package api is ingest's HTTP transport: the collector endpoint POST /v1/events (SDK-key
// authentication, CORS for client keys, JSON or Arrow IPC, optional gzip) and the internal
// usage and export endpoints (bearer service token) that dashboards and data scientists use.
package api

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/ingest/internal/collector"
	"github.com/switchyard-io/switchyard/ingest/internal/export"
	"github.com/switchyard-io/switchyard/ingest/internal/keys"
	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// ArrowContentType is the media type of Arrow IPC stream batches.
const ArrowContentType = "application/vnd.apache.arrow.stream"

// SentAtHeader says when an SDK sent a batch, by its own clock, in milliseconds since the Unix
// epoch; set on every attempt, it lets the collector correct event times for a wrong clock
// (event.ClockOffset).
const SentAtHeader = "X-Switchyard-Sent-At"

// SDKKeyParam carries a client key in the query, for navigator.sendBeacon, which cannot set
// headers. Client keys only: they are public (shipped in web pages), while a server key in a
// URL would end up in proxies' logs. (Request logs here record the path without the query.)
const SDKKeyParam = "key"

// SentAtParam is SentAtHeader as a query parameter, for senders that cannot set headers
// (navigator.sendBeacon).
const SentAtParam = "sent_at"

// Server holds what the handlers need. Collector and Keys are nil when the process runs only
// the writer; ClickHouse and QueryToken are needed for the usage and export endpoints.
type Server struct {
	Collector  *collector.Collector
	Keys       *keys.Ring
	ClickHouse driver.Conn
	// QueryToken is the bearer token of the usage and export endpoints; empty disables them.
	QueryToken string
	// CORSOrigin is the Access-Control-Allow-Origin given to browsers using client keys.
	CORSOrigin string
	// ExportTimeout bounds one export stream.
	ExportTimeout time.Duration
	Log           *slog.Logger

	lastRefusalLog atomic.Int64 // unix second of the last refusal logged
}

// Mount registers the routes on app.
func (s *Server) Mount(app fiber.Router) {
	if s.Collector != nil {
		app.Options("/v1/events", s.preflight)
		app.Post("/v1/events", s.postEvents)
	}
	if s.ClickHouse != nil && s.QueryToken != "" {
		g := app.Group("/v1", s.requireToken)
		g.Get("/usage/evaluations", s.evaluations)
		g.Get("/usage/contexts", s.contexts)
		g.Get("/usage/active-contexts", s.activeContexts)
		g.Get("/export/exposures", s.exportExposures)
		g.Get("/export/tracks", s.exportTracks)
	}
}

func (s *Server) cors(c *fiber.Ctx) {
	if c.Get(fiber.HeaderOrigin) == "" {
		return
	}
	origin := s.CORSOrigin
	if origin == "" {
		origin = "*"
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	c.Set(fiber.HeaderAccessControlExposeHeaders, "Retry-After")
	if origin != "*" {
		c.Vary(fiber.HeaderOrigin)
	}
}

// preflight answers browsers' CORS preflight. It cannot see the SDK key (preflights carry no
// credentials); the POST itself only gets CORS headers for client keys.
func (s *Server) preflight(c *fiber.Ctx) error {
	s.cors(c)
	c.Set(fiber.HeaderAccessControlAllowMethods, "POST, OPTIONS")
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Authorization, Content-Type, Content-Encoding, "+SentAtHeader)
	c.Set(fiber.HeaderAccessControlMaxAge, "86400")
	return c.SendStatus(fiber.StatusNoContent)
}

func sdkKey(c *fiber.Ctx) string {
	h := strings.TrimSpace(c.Get(fiber.HeaderAuthorization))
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		h = strings.TrimSpace(h[7:])
	}
	return h
}

func (s *Server) postEvents(c *fiber.Ctx) error {
	raw, inQuery := sdkKey(c), false
	if raw == "" {
		raw, inQuery = strings.TrimSpace(c.Query(SDKKeyParam)), true
	}
	if raw == "" {
		s.cors(c)
		return errs.Unauthenticated("missing SDK key (Authorization header, or ?" + SDKKeyParam + "= for a client key)")
	}
	if !s.Keys.Ready() {
		c.Set(fiber.HeaderRetryAfter, "2")
		return errs.Unavailable(nil, "SDK keys are still loading; retry shortly")
	}
	key, err := s.Keys.Lookup(raw)
	if err != nil {
		s.cors(c)
		if errors.Is(err, keys.ErrExpiredKey) {
			return errs.Unauthenticated("SDK key expired")
		}
		return errs.Unauthenticated("unknown SDK key")
	}
	if key.Kind == ruleset.KeyClient {
		s.cors(c)
	} else if inQuery {
		return errs.Unauthenticated("a server key goes in the Authorization header, never in a URL")
	}
	format := collector.FormatJSON
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(c.Get(fiber.HeaderContentType), ";", 2)[0]))
	switch ct {
	case "", fiber.MIMEApplicationJSON, fiber.MIMETextPlain:
		// text/plain lets browsers send without a preflight (navigator.sendBeacon).
	case ArrowContentType:
		format = collector.FormatArrow
	default:
		return fiber.NewError(fiber.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not supported (application/json, %s)", ct, ArrowContentType))
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding))); enc {
	case "", "identity":
	case "gzip":
		gz = true
	default:
		return fiber.NewError(fiber.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported (gzip)", enc))
	}
	// The send time: a header, or for navigator.sendBeacon, which cannot set one, the query.
	var sentAt int64
	field, h := SentAtHeader, strings.TrimSpace(c.Get(SentAtHeader))
	if h == "" {
		field, h = SentAtParam, strings.TrimSpace(c.Query(SentAtParam))
	}
	if h != "" {
		// Up to the year 9999: a bigger number is no time, and would overflow the correction.
		if sentAt, err = strconv.ParseInt(h, 10, 64); err != nil || sentAt <= 0 || sentAt > 253402300799999 {
			return errs.Malformed(field, "must be when the batch was sent, in milliseconds since the Unix epoch (got %q)", h)
		}
	}
	// Request().Body() is the body as sent; Fiber's c.Body() would decompress it without a size
	// limit.
	res, err := s.Collector.Ingest(c.UserContext(), key, c.Request().Body(), format, gz, sentAt)
	if err != nil {
		var re *collector.RetryError
		if errors.As(err, &re) {
			// Answered here rather than by the shared error handler, which logs every 503: under
			// overload that is a thousand lines a second. Refusals are counted in
			// ingest_batches_refused_total and logged at most once per second.
			c.Set(fiber.HeaderRetryAfter, collector.RetryAfterSeconds(re.RetryAfter))
			s.logRefusal(re)
			return c.Status(httpapi.Status(re.Err.Kind)).JSON(httpapi.ErrorBody{Error: httpapi.ErrorDetail{Code: re.Err.Kind.Code(), Message: re.Err.Message}})
		}
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(res)
}

func (s *Server) logRefusal(re *collector.RetryError) {
	now := time.Now().Unix()
	last := s.lastRefusalLog.Load()
	if now > last && s.lastRefusalLog.CompareAndSwap(last, now) {
		s.Log.Warn("refusing event batches", "err", re.Err, "retry_after", re.RetryAfter.String())
	}
}

func (s *Server) requireToken(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.QueryToken)) != 1 {
		return errs.Unauthenticated("missing or invalid service token")
	}
	return c.Next()
}

// timeRange parses from/to (RFC 3339; default: the 30 days up to now).
func timeRange(c *fiber.Ctx) (from, to time.Time, err error) {
	to = time.Now().UTC()
	if v := c.Query("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, errs.Malformed("to", "expected an RFC 3339 time")
		}
	}
	from = to.AddDate(0, 0, -30)
	if v := c.Query("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, errs.Malformed("from", "expected an RFC 3339 time")
		}
	}
	if !from.Before(to) {
		return from, to, errs.Invalid("from", "must be before to")
	}
	return from, to, nil
}

func usageFilter(c *fiber.Ctx) (chstore.UsageFilter, error) {
	env := c.Query("environment_id")
	if env == "" {
		return chstore.UsageFilter{}, errs.Invalid("environment_id", "required")
	}
	from, to, err := timeRange(c)
	if err != nil {
		return chstore.UsageFilter{}, err
	}
	return chstore.UsageFilter{EnvironmentID: env, FlagKey: c.Query("flag_key"), From: from, To: to}, nil
}

func queryErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return errs.Unavailable(err, "ClickHouse did not answer in time")
	}
	return errs.Unavailable(err, "ClickHouse query failed")
}

// evaluations: GET /v1/usage/evaluations?environment_id&from&to&flag_key&interval=hour|day
// &source=summaries|daily_rollup — evaluation counts per flag x variation per bucket.
func (s *Server) evaluations(c *fiber.Ctx) error {
	f, err := usageFilter(c)
	if err != nil {
		return err
	}
	var out []chstore.EvaluationCount
	switch c.Query("source", "summaries") {
	case "summaries":
		interval := chstore.Interval(c.Query("interval", "day"))
		if interval != chstore.IntervalDay && interval != chstore.IntervalHour {
			return errs.Invalid("interval", "must be hour or day")
		}
		out, err = chstore.EvaluationCounts(c.UserContext(), s.ClickHouse, f, interval)
	case "daily_rollup":
		out, err = chstore.DailyRollup(c.UserContext(), s.ClickHouse, f)
	default:
		return errs.Invalid("source", "must be summaries or daily_rollup")
	}
	if err != nil {
		return queryErr(err)
	}
	return c.JSON(fiber.Map{"environment_id": f.EnvironmentID, "from": f.From, "to": f.To, "counts": out})
}

// contexts: GET /v1/usage/contexts?environment_id&from&to&flag_key — unique contexts and
// exposures per flag x variation.
func (s *Server) contexts(c *fiber.Ctx) error {
	f, err := usageFilter(c)
	if err != nil {
		return err
	}
	out, err := chstore.ContextsPerVariation(c.UserContext(), s.ClickHouse, f)
	if err != nil {
		return queryErr(err)
	}
	return c.JSON(fiber.Map{"environment_id": f.EnvironmentID, "from": f.From, "to": f.To, "variations": out})
}

// activeContexts: GET /v1/usage/active-contexts?environment_id&from&to — distinct contexts
// per month (billing limits).
func (s *Server) activeContexts(c *fiber.Ctx) error {
	f, err := usageFilter(c)
	if err != nil {
		return err
	}
	out, err := chstore.MonthlyActiveContexts(c.UserContext(), s.ClickHouse, f.EnvironmentID, f.From, f.To)
	if err != nil {
		return queryErr(err)
	}
	return c.JSON(fiber.Map{"environment_id": f.EnvironmentID, "months": out})
}

func (s *Server) exportFilter(c *fiber.Ctx) (chstore.ExportFilter, export.Format, error) {
	env := c.Query("environment_id")
	if env == "" {
		return chstore.ExportFilter{}, "", errs.Invalid("environment_id", "required")
	}
	from, to, err := timeRange(c)
	if err != nil {
		return chstore.ExportFilter{}, "", err
	}
	format, err := export.ParseFormat(c.Query("format"))
	if err != nil {
		return chstore.ExportFilter{}, "", errs.Invalid("format", "must be parquet or arrow")
	}
	return chstore.ExportFilter{EnvironmentID: env, From: from, To: to, ExperimentKey: c.Query("experiment_key"),
		FlagKey: c.Query("flag_key"), EventKey: c.Query("event_key")}, format, nil
}

// exportExposures: GET /v1/export/exposures?environment_id&from&to&experiment_key&flag_key
// &format=parquet|arrow — streams deduplicated exposures.
func (s *Server) exportExposures(c *fiber.Ctx) error {
	return s.stream(c, "exposures", export.Exposures)
}

// exportTracks: GET /v1/export/tracks?environment_id&from&to&event_key&experiment_key
// &format=parquet|arrow — streams deduplicated track events.
func (s *Server) exportTracks(c *fiber.Ctx) error {
	return s.stream(c, "tracks", export.Tracks)
}

func (s *Server) stream(c *fiber.Ctx, what string, fn func(context.Context, driver.Conn, chstore.ExportFilter, export.Format, io.Writer) (int, error)) error {
	f, format, err := s.exportFilter(c)
	if err != nil {
		return err
	}
	// Check ClickHouse before committing to a 200: once streaming starts, an error can only
	// truncate the file (which Parquet and Arrow readers then reject).
	pctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	err = s.ClickHouse.Ping(pctx)
	cancel()
	if err != nil {
		return queryErr(err)
	}
	ext := ".parquet"
	if format == export.FormatArrow {
		ext = ".arrows"
	}
	c.Set(fiber.HeaderContentType, format.ContentType())
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s-%s%s"`, what, f.EnvironmentID, ext))
	timeout := s.ExportTimeout
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	log := s.Log
	conn := s.ClickHouse
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		n, err := fn(ctx, conn, f, format, w)
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			log.Warn("export failed; stream truncated", "what", what, "rows", n, "err", err)
			return
		}
		log.Info("export done", "what", what, "rows", n, "format", string(format))
	})
	return nil
}
