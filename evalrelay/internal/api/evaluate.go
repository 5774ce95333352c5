package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// evaluateRequest asks for some (or all) flags for one context.
type evaluateRequest struct {
	Context json.RawMessage `json:"context"`
	Flags   []string        `json:"flags"`
}

// flagResult is one remote evaluation. Value is absent when the caller's fallback applies.
type flagResult struct {
	Value         json.RawMessage `json:"value,omitempty"`
	Variation     string          `json:"variation,omitempty"`
	Reason        string          `json:"reason"`
	ErrorCode     string          `json:"error_code,omitempty"`
	RuleID        string          `json:"rule_id,omitempty"`
	Version       int64           `json:"version,omitempty"`
	ExperimentKey string          `json:"experiment_key,omitempty"`
}

// evaluate is remote evaluation for clients that do not evaluate locally: the requested
// flags (default: all) for one context. Client keys see client-side flags only. The answer is
// {"flags": {key: result}, "version": n}, written by hand (see appendResult): at 10k requests
// a second, reflection over a map of results was a fifth of the relay's CPU.
func (a *API) evaluate(c *fiber.Ctx) error {
	key := keyOf(c)
	var req evaluateRequest
	if err := gojson.Unmarshal(c.Body(), &req); err != nil {
		return bodyError(c.Body(), err)
	}
	if len(req.Context) == 0 || string(req.Context) == "null" {
		return errs.Malformed("context", "is required")
	}
	ctx, err := evaluation.ParseContext(req.Context)
	if err != nil {
		return errs.Invalid("context", "%v", err)
	}
	rs := key.Entry.Compiled
	clientOnly := key.Kind == ruleset.KeyClient
	buf := append(make([]byte, 0, 128+96*max(len(req.Flags), 8)), `{"flags":{`...)
	n := 0
	add := func(flag string, r evaluation.Result) {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = appendJSONString(buf, flag)
		buf = append(buf, ':')
		buf = appendResult(buf, a.result(r, "evaluate"))
	}
	if len(req.Flags) == 0 {
		for _, r := range rs.EvaluateAll(ctx, clientOnly) {
			add(r.FlagKey(), r)
		}
	} else {
		// Keys in order, each once (a flag asked twice is answered once).
		slices.Sort(req.Flags)
		for _, k := range slices.Compact(req.Flags) {
			var r evaluation.Result
			if visible(rs, k, clientOnly) {
				r = rs.Evaluate(k, ctx)
			} else {
				r = evaluation.Result{Reason: evaluation.ReasonError, ErrorCode: evaluation.ErrorFlagNotFound, RuleIndex: -1}
			}
			add(k, r)
		}
	}
	buf = append(buf, `},"version":`...)
	buf = strconv.AppendInt(buf, key.Entry.Version, 10)
	buf = append(buf, '}')
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(buf)
}

// bodyError explains a remote-evaluation body that did not decode. goccy's errors do not
// always name the field, so on this (rare) path encoding/json decodes it again to find it.
func bodyError(body []byte, err error) error {
	var te *json.UnmarshalTypeError
	if e := json.Unmarshal(body, new(evaluateRequest)); errors.As(e, &te) && te.Field != "" {
		field, _, _ := strings.Cut(te.Field, ".")
		want := map[string]string{"flags": "a list of flag keys", "context": "an object"}[field]
		return errs.Malformed(field, "must be %s, not a JSON %s", cmp.Or(want, te.Type.String()), te.Value)
	}
	return errs.Malformed("", "body must be {\"context\": {...}, \"flags\": [...]}: %v", err)
}

// appendResult appends r as the JSON object flagResult describes. The value is the
// variation's JSON as published (valid: the relay compiled the ruleset it came in).
func appendResult(b []byte, r flagResult) []byte {
	b = append(b, `{"reason":`...)
	b = appendJSONString(b, r.Reason)
	if len(r.Value) > 0 {
		b = append(b, `,"value":`...)
		b = append(b, r.Value...)
	}
	for _, f := range [...]struct{ name, v string }{{"variation", r.Variation}, {"error_code", r.ErrorCode},
		{"rule_id", r.RuleID}, {"experiment_key", r.ExperimentKey}} {
		if f.v != "" {
			b = append(b, ',', '"')
			b = append(b, f.name...)
			b = append(b, '"', ':')
			b = appendJSONString(b, f.v)
		}
	}
	if r.Version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, r.Version, 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: copied when it needs no escaping (flag keys,
// variation keys, reasons and rule ids always), else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func visible(rs *evaluation.Ruleset, key string, clientOnly bool) bool {
	info, ok := rs.Flag(key)
	return ok && (!clientOnly || info.ClientSide)
}

func (a *API) result(r evaluation.Result, endpoint string) flagResult {
	a.metrics.counted(endpoint, r.Reason).Inc()
	out := flagResult{Reason: string(r.Reason), ErrorCode: string(r.ErrorCode), RuleID: r.RuleID(), Version: r.FlagVersion(),
		ExperimentKey: r.ExperimentKey()}
	if r.Variation != nil {
		out.Value, out.Variation = r.Variation.Value, r.Variation.Key
	}
	return out
}

// --- OpenFeature Remote Evaluation Protocol ---

type ofrepRequest struct {
	Context map[string]json.RawMessage `json:"context"`
}

type ofrepSuccess struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"`
	Reason   string          `json:"reason"`
	Variant  string          `json:"variant,omitempty"`
	Metadata map[string]any  `json:"metadata"`
}

type ofrepFailure struct {
	Key          string `json:"key"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// ofrepContext turns an OpenFeature evaluation context into a Switchyard context: the
// targetingKey is the key, "kind" (default user) the context kind, every other attribute an
// attribute. A context of kind "multi" is made of its object members, one context kind each
// (their targetingKey or key is the key); its own scalar members — the targetingKey OpenFeature
// SDKs set at the top level — have no kind and are left out, as the Go provider does.
func ofrepContext(in map[string]json.RawMessage) (evaluation.Context, error) {
	if in == nil {
		return evaluation.Context{}, errors.New("context is required")
	}
	var kind string
	if raw, ok := in["kind"]; ok {
		if err := json.Unmarshal(raw, &kind); err != nil {
			return evaluation.Context{}, errors.New("kind must be a string")
		}
	}
	var out map[string]json.RawMessage
	if kind == "multi" {
		out = map[string]json.RawMessage{"kind": json.RawMessage(`"multi"`)}
		for name, v := range in {
			var part map[string]json.RawMessage
			if name == "kind" || json.Unmarshal(v, &part) != nil || part == nil {
				continue
			}
			delete(part, "kind")
			out[name], _ = json.Marshal(keyed(part))
		}
	} else {
		out = keyed(in)
		if kind == "" {
			out["kind"] = json.RawMessage(`"user"`)
		}
	}
	raw, _ := json.Marshal(out)
	return evaluation.ParseContext(raw)
}

// keyed copies an OpenFeature context's members with its targetingKey (else key) as "key".
func keyed(in map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(in)+1)
	for k, v := range in {
		switch k {
		case "targetingKey":
			out["key"] = v
		case "key":
			if _, set := in["targetingKey"]; !set {
				out["key"] = v
			}
		default:
			out[k] = v
		}
	}
	return out
}

func (a *API) ofrepEvaluate(e *rulesets.Entry, flag string, ctx evaluation.Context, clientOnly bool) (any, int) {
	if !visible(e.Compiled, flag, clientOnly) {
		return notFound(flag), fiber.StatusNotFound
	}
	r := e.Compiled.Evaluate(flag, ctx)
	a.metrics.counted("ofrep", r.Reason).Inc()
	if r.Reason == evaluation.ReasonError {
		code := string(r.ErrorCode)
		switch r.ErrorCode {
		case evaluation.ErrorTargetingKeyMissing, evaluation.ErrorInvalidContext, evaluation.ErrorParse:
		default:
			code = "GENERAL"
		}
		return ofrepFailure{Key: flag, ErrorCode: code, ErrorDetails: "evaluation failed: " + string(r.ErrorCode)}, fiber.StatusBadRequest
	}
	meta := map[string]any{"flagVersion": r.FlagVersion()}
	if id := r.RuleID(); id != "" {
		meta["ruleId"] = id
	}
	if x := r.ExperimentKey(); x != "" {
		meta["experimentKey"] = x
	}
	out := ofrepSuccess{Key: flag, Reason: string(r.Reason), Metadata: meta}
	if r.Variation != nil {
		out.Value, out.Variant = r.Variation.Value, r.Variation.Key
	} // else: no value — the provider serves the code default (OFREP ADR 0006).
	return out, fiber.StatusOK
}

func notFound(flag string) ofrepFailure {
	return ofrepFailure{Key: flag, ErrorCode: "FLAG_NOT_FOUND", ErrorDetails: fmt.Sprintf("flag %q not found", flag)}
}

func (a *API) ofrepOne(c *fiber.Ctx) error {
	key := keyOf(c)
	flag := c.Params("key")
	clientOnly := key.Kind == ruleset.KeyClient
	if !visible(key.Entry.Compiled, flag, clientOnly) { // FLAG_NOT_FOUND comes before context errors
		return c.Status(fiber.StatusNotFound).JSON(notFound(flag))
	}
	var req ofrepRequest
	if err := gojson.Unmarshal(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(ofrepFailure{Key: flag, ErrorCode: "INVALID_CONTEXT", ErrorDetails: "body must be {\"context\": {...}}"})
	}
	ctx, err := ofrepContext(req.Context)
	if err != nil {
		code := contextErrorCode(err)
		return c.Status(fiber.StatusBadRequest).JSON(ofrepFailure{Key: flag, ErrorCode: code, ErrorDetails: err.Error()})
	}
	body, status := a.ofrepEvaluate(key.Entry, flag, ctx, clientOnly)
	return c.Status(status).JSON(body)
}

// ofrepAll evaluates every visible flag. Its ETag covers the ruleset version and the context,
// so a client polling with If-None-Match gets 304 until either changes.
func (a *API) ofrepAll(c *fiber.Ctx) error {
	key := keyOf(c)
	var req ofrepRequest
	if err := gojson.Unmarshal(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"errorCode": "INVALID_CONTEXT", "errorDetails": "body must be {\"context\": {...}}"})
	}
	ctx, err := ofrepContext(req.Context)
	if err != nil {
		code := contextErrorCode(err)
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"errorCode": code, "errorDetails": err.Error()})
	}
	h := fnv.New64a()
	h.Write([]byte(key.Kind)) // a client key sees fewer flags than a server key
	h.Write(c.Body())
	etag := fmt.Sprintf(`"%s-%d-%x"`, key.Entry.EnvID, key.Entry.Version, h.Sum64())
	c.Set(fiber.HeaderETag, etag)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	clientOnly := key.Kind == ruleset.KeyClient
	flags := []any{}
	for _, k := range key.Entry.Compiled.FlagKeys() {
		if !visible(key.Entry.Compiled, k, clientOnly) {
			continue
		}
		body, _ := a.ofrepEvaluate(key.Entry, k, ctx, clientOnly)
		flags = append(flags, body)
	}
	return c.JSON(fiber.Map{"flags": flags})
}

func contextErrorCode(err error) string {
	if errors.Is(err, evaluation.ErrTargetingKeyMissing) {
		return "TARGETING_KEY_MISSING"
	}
	return "INVALID_CONTEXT"
}

// ofrepConfiguration describes the relay to OFREP providers that ask.
func (a *API) ofrepConfiguration(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{
		"name": "switchyard",
		"capabilities": fiber.Map{
			"cacheInvalidation": fiber.Map{"polling": fiber.Map{"enabled": true, "minPollingIntervalMs": 1000}},
			"flagEvaluation":    fiber.Map{"supportedTypes": []string{"boolean", "string", "int", "float", "object"}},
		},
	})
}
