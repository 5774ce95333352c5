// Package errs is the error vocabulary shared by every Switchyard service: a Kind (what went
// wrong, in terms a client can act on) plus the offending field and a message. Domain code
// returns these; one transport middleware (platform/httpapi) maps kinds to status codes and the
// uniform JSON body {"error":{"code","message","field"}}. Domain code never picks status codes.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error for clients.
type Kind int

// Kinds, from the client's point of view.
const (
	// KindInternal is a bug or an unexpected failure; details are logged, not returned.
	KindInternal Kind = iota
	// KindMalformed: the request cannot be decoded (bad JSON, unknown field, wrong type).
	KindMalformed
	// KindInvalid: the request decodes but breaks a rule (weights, regex, references, cycles).
	KindInvalid
	// KindNotFound: the addressed resource does not exist (or is not visible to the caller).
	KindNotFound
	// KindConflict: duplicate key, or a write based on a stale version.
	KindConflict
	// KindPreconditionFailed: the resource is in a state that forbids the change (locked).
	KindPreconditionFailed
	// KindUnauthenticated: no or invalid credentials.
	KindUnauthenticated
	// KindPermissionDenied: valid credentials without the right to do this.
	KindPermissionDenied
	// KindRateLimited: too many requests; retry later.
	KindRateLimited
	// KindUnavailable: a dependency is down; retry later.
	KindUnavailable
	// KindTooLarge: the request body or a list in it is over a limit.
	KindTooLarge
)

var codes = map[Kind]string{
	KindInternal:           "internal",
	KindMalformed:          "invalid_argument",
	KindInvalid:            "validation_failed",
	KindNotFound:           "not_found",
	KindConflict:           "conflict",
	KindPreconditionFailed: "failed_precondition",
	KindUnauthenticated:    "unauthenticated",
	KindPermissionDenied:   "permission_denied",
	KindRateLimited:        "rate_limited",
	KindUnavailable:        "unavailable",
	KindTooLarge:           "too_large",
}

// Code is the stable machine-readable code of a kind, as it appears in API responses.
func (k Kind) Code() string { return codes[k] }

func (k Kind) String() string { return codes[k] }

// Error is an error with a kind, an optional field path and a message safe to show clients.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	// Err is the underlying cause, for logs and errors.Is; never shown to clients.
	Err error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Kind: k}) match any Error of kind k.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Field == "" && t.Message == "" && t.Err == nil && t.Kind == e.Kind
}

func newf(kind Kind, field, format string, args []any) *Error {
	return &Error{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Malformed reports an undecodable request.
func Malformed(field, format string, args ...any) *Error {
	return newf(KindMalformed, field, format, args)
}

// Invalid reports a request that breaks a rule.
func Invalid(field, format string, args ...any) *Error { return newf(KindInvalid, field, format, args) }

// NotFound reports a missing resource.
func NotFound(format string, args ...any) *Error { return newf(KindNotFound, "", format, args) }

// Conflict reports a duplicate or a stale write.
func Conflict(field, format string, args ...any) *Error {
	return newf(KindConflict, field, format, args)
}

// PreconditionFailed reports a change forbidden by the resource's state.
func PreconditionFailed(field, format string, args ...any) *Error {
	return newf(KindPreconditionFailed, field, format, args)
}

// Unauthenticated reports missing or invalid credentials.
func Unauthenticated(format string, args ...any) *Error {
	return newf(KindUnauthenticated, "", format, args)
}

// PermissionDenied reports a caller without the needed role.
func PermissionDenied(format string, args ...any) *Error {
	return newf(KindPermissionDenied, "", format, args)
}

// Unavailable reports a dependency that is down.
func Unavailable(cause error, format string, args ...any) *Error {
	e := newf(KindUnavailable, "", format, args)
	e.Err = cause
	return e
}

// TooLarge reports a request over a size limit.
func TooLarge(field, format string, args ...any) *Error {
	return newf(KindTooLarge, field, format, args)
}

// Internal wraps an unexpected failure.
func Internal(cause error, format string, args ...any) *Error {
	e := newf(KindInternal, "", format, args)
	e.Err = cause
	return e
}

// KindOf returns the kind of err, or KindInternal when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Sentinels for errors.Is comparisons: errors.Is(err, errs.ErrNotFound).
var (
	ErrNotFound           = &Error{Kind: KindNotFound}
	ErrConflict           = &Error{Kind: KindConflict}
	ErrInvalid            = &Error{Kind: KindInvalid}
	ErrMalformed          = &Error{Kind: KindMalformed}
	ErrPermissionDenied   = &Error{Kind: KindPermissionDenied}
	ErrUnauthenticated    = &Error{Kind: KindUnauthenticated}
	ErrPreconditionFailed = &Error{Kind: KindPreconditionFailed}
)
