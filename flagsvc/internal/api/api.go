// Package api is the flag service's REST API (/api/v1) on Fiber: authentication by API token,
// request decoding, and the translation between HTTP and the feature services. Authorization
// happens in the services (every call checks the caller's role), so no route can skip it.
package api

import (
	_ "embed"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/environments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/experiments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/flags"
	"github.com/switchyard-io/switchyard/flagsvc/internal/guardrails"
	"github.com/switchyard-io/switchyard/flagsvc/internal/metrics"
	"github.com/switchyard-io/switchyard/flagsvc/internal/orgs"
	"github.com/switchyard-io/switchyard/flagsvc/internal/sdkkeys"
	"github.com/switchyard-io/switchyard/flagsvc/internal/segments"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/flagsvc/internal/tokens"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// OpenAPI is the API's OpenAPI 3 document, served at /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Services are what the API translates to.
type Services struct {
	Store        *store.Store
	Tokens       *tokens.Service
	Orgs         *orgs.Service
	Environments *environments.Service
	Flags        *flags.Service
	Segments     *segments.Service
	SDKKeys      *sdkkeys.Service
	Metrics      *metrics.Service
	Experiments  *experiments.Service
	Guardrails   *guardrails.Service
}

// API holds the handlers.
type API struct {
	s Services
}

const principalKey = "principal"

// Mount registers every route under /api/v1.
func Mount(app fiber.Router, s Services) {
	a := &API{s: s}
	v1 := app.Group("/api/v1")
	v1.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		return c.Send(OpenAPI)
	})
	v1.Use(a.authenticate, readComment)

	v1.Get("/me", a.me)
	v1.Get("/members", a.listMembers)
	v1.Post("/members", a.addMember)
	v1.Patch("/members/:user", a.updateMember)
	v1.Delete("/members/:user", a.removeMember)
	v1.Get("/tokens", a.listTokens)
	v1.Post("/tokens", a.createToken)
	v1.Delete("/tokens/:token", a.revokeToken)
	v1.Get("/tokens/:token/descendants", a.tokenDescendants)
	v1.Get("/audit", a.queryAudit)
	v1.Get("/audit/export", a.exportAudit)

	v1.Get("/projects", a.listProjects)
	v1.Post("/projects", a.createProject)
	v1.Get("/projects/:project", a.getProject)
	v1.Patch("/projects/:project", a.updateProject)
	v1.Delete("/projects/:project", a.deleteProject)

	env := "/projects/:project/environments/:env"
	v1.Get("/projects/:project/environments", a.listEnvironments)
	v1.Post("/projects/:project/environments", a.createEnvironment)
	v1.Get(env, a.getEnvironment)
	v1.Patch(env, a.updateEnvironment)
	v1.Delete(env, a.deleteEnvironment)
	v1.Post(env+"/clone", a.cloneEnvironment)
	v1.Put(env+"/lock", a.lockEnvironment)
	v1.Get(env+"/ruleset", a.previewRuleset)

	v1.Get(env+"/sdk-keys", a.listSDKKeys)
	v1.Post(env+"/sdk-keys", a.createSDKKey)
	v1.Post(env+"/sdk-keys/:key/rotate", a.rotateSDKKey)
	v1.Delete(env+"/sdk-keys/:key", a.revokeSDKKey)

	v1.Get(env+"/segments", a.listSegments)
	v1.Post(env+"/segments", a.createSegment)
	v1.Get(env+"/segments/:segment", a.getSegment)
	v1.Put(env+"/segments/:segment", a.updateSegment)
	v1.Delete(env+"/segments/:segment", a.deleteSegment)
	v1.Post(env+"/segments/:segment/import", a.importSegment)

	flag := "/projects/:project/flags/:flag"
	v1.Get("/projects/:project/flags", a.listFlags)
	v1.Post("/projects/:project/flags", a.createFlag)
	v1.Post("/projects/:project/flags/bulk", a.bulkFlags)
	v1.Get(flag, a.getFlag)
	v1.Patch(flag, a.updateFlag)
	v1.Delete(flag, a.deleteFlag)
	v1.Get(flag+"/environments/:env", a.getConfig)
	v1.Put(flag+"/environments/:env", a.putConfig)
	v1.Patch(flag+"/environments/:env", a.patchConfig)
	v1.Post(flag+"/environments/:env/toggle", a.toggle)
	v1.Post(flag+"/environments/:env/kill", a.kill)
	v1.Post(flag+"/environments/:env/rollback", a.rollback)
	v1.Get(flag+"/environments/:env/history", a.history)

	metric := "/projects/:project/metrics/:metric"
	v1.Get("/projects/:project/metrics", a.listMetrics)
	v1.Post("/projects/:project/metrics", a.createMetric)
	v1.Get(metric, a.getMetric)
	v1.Put(metric, a.updateMetric)
	v1.Delete(metric, a.archiveMetric)
	v1.Get(metric+"/versions", a.metricVersions)

	exp := "/projects/:project/experiments/:experiment"
	v1.Get("/experiments", a.listOrgExperiments)
	v1.Get("/projects/:project/experiments", a.listExperiments)
	v1.Post("/projects/:project/experiments", a.createExperiment)
	v1.Get(exp, a.getExperiment)
	v1.Patch(exp, a.updateExperiment)
	v1.Delete(exp, a.deleteExperiment)
	v1.Post(exp+"/start", a.startExperiment)
	v1.Post(exp+"/stop", a.stopExperiment)
	v1.Post(exp+"/conclude", a.concludeExperiment)

	v1.Get("/guardrails", a.listOrgGuardrails)
	v1.Get(env+"/guardrails", a.listGuardrails)
	v1.Post(env+"/guardrails", a.createGuardrail)
	v1.Delete(env+"/guardrails/:guardrail", a.disableGuardrail)
	v1.Post(env+"/guardrails/:guardrail/breach", a.breachGuardrail)
}

// authenticate resolves the bearer token into a principal; every /api/v1 route but the
// OpenAPI document needs one.
func (a *API) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="switchyard"`)
		return errs.Unauthenticated("send an API token as Authorization: Bearer <token>")
	}
	p, err := a.s.Tokens.Authenticate(c.UserContext(), strings.TrimSpace(token))
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="switchyard", error="invalid_token"`)
		return err
	}
	c.Locals(principalKey, p)
	return c.Next()
}

func caller(c *fiber.Ctx) audit.Caller {
	p, _ := c.Locals(principalKey).(*access.Principal)
	cl := audit.Caller{P: p, Req: audit.Request{IP: c.IP(), UserAgent: string(c.Request().Header.UserAgent())}}
	// Services (service tokens) may say a change is a scheduled one; people may not.
	if o := c.Get("X-Switchyard-Origin"); o == "scheduled" && p != nil && p.Actor.Type == "token" {
		cl.Origin = o
	}
	cl.Comment, _ = c.Locals(commentKey).(string)
	return cl
}

// CommentHeader carries a request's comment for the audit log, for writes whose body has no
// "comment" (a DELETE, an archive, a revocation) or on top of it: UTF-8, percent-encoded as
// encodeURIComponent does it (a header carries Latin-1 only), so a literal "%" is "%25".
const CommentHeader = "X-Switchyard-Comment"

// MaxComment bounds a request's comment, in characters.
const MaxComment = 1000

const commentKey = "comment"

// readComment checks and decodes the request's CommentHeader for caller.
func readComment(c *fiber.Ctx) error {
	h := c.Get(CommentHeader)
	if h == "" {
		return c.Next()
	}
	text, err := url.PathUnescape(h)
	if err != nil || !utf8.ValidString(text) {
		return errs.Malformed(CommentHeader, "must be UTF-8 text, percent-encoded (as encodeURIComponent does); a literal %% is %%25")
	}
	if n := utf8.RuneCountInString(text); n > MaxComment {
		return errs.Invalid(CommentHeader, "must be at most %d characters (has %d)", MaxComment, n)
	}
	c.Locals(commentKey, strings.TrimSpace(text))
	return c.Next()
}

// ifMatch reads the version a write is based on from If-Match ("3" or W/"3"), or nil.
func ifMatch(c *fiber.Ctx) (*int64, error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" {
		return nil, nil
	}
	h = strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	v, err := strconv.ParseInt(h, 10, 64)
	if err != nil || v < 1 {
		return nil, errs.Malformed("If-Match", "must be a version number such as \"3\"")
	}
	return &v, nil
}

// version picks the expected version from If-Match or the body; both must agree.
func version(c *fiber.Ctx, body *int64) (*int64, error) {
	h, err := ifMatch(c)
	if err != nil {
		return nil, err
	}
	if h != nil && body != nil && *h != *body {
		return nil, errs.Malformed("version", "If-Match and version disagree")
	}
	if h != nil {
		return h, nil
	}
	return body, nil
}

func setETag(c *fiber.Ctx, v int64) {
	c.Set(fiber.HeaderETag, `"`+strconv.FormatInt(v, 10)+`"`)
}

func intQuery(c *fiber.Ctx, name string, def int) (int, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errs.Malformed(name, "must be a non-negative integer")
	}
	return n, nil
}

func boolQuery(c *fiber.Ctx, name string) (*bool, error) {
	s := c.Query(name)
	if s == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil, errs.Malformed(name, "must be true or false")
	}
	return &b, nil
}
