package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/platform/errs"
)

// DecodeJSON decodes a request body strictly into v: unknown fields, wrong types, trailing data
// and syntax errors are KindMalformed errors naming the field (or the byte offset).
func DecodeJSON(c *fiber.Ctx, v any) error {
	ct := strings.ToLower(string(c.Request().Header.ContentType()))
	if ct != "" && !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return errs.Malformed("Content-Type", "expected application/json, got %q", ct)
	}
	return Decode(c.Body(), v)
}

// Decode decodes data strictly into v, like DecodeJSON; a string with the NUL character is an
// Invalid error naming its field.
func Decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errs.Malformed("", "request body is empty; expected a JSON document")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return DecodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errs.Malformed("", "unexpected data after the JSON document")
	}
	// Every body decoded here is stored in Postgres, which refuses NUL in text and jsonb.
	return errs.RefuseNUL(data)
}

// DecodeError translates an encoding/json error into a KindMalformed error naming the field.
func DecodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		field  *fieldError
	)
	switch {
	case errors.As(err, &syntax):
		return errs.Malformed("", "invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		name := jsonFieldPath(typ.Field)
		if name == "" {
			name = "body"
		}
		return errs.Malformed(name, "expected %s, got JSON %s", describeType(typ.Type.String()), typ.Value)
	case errors.As(err, &field):
		return errs.Malformed(field.Field, "%s", field.Message)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errs.Malformed("", "truncated JSON document")
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name := strings.Trim(rest, `"`)
		return errs.Malformed(name, "unknown field %q", name)
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return e
	}
	return errs.Malformed("", "invalid JSON: %s", strings.TrimPrefix(msg, "json: "))
}

// fieldError lets custom UnmarshalJSON methods report the field they reject.
type fieldError struct{ Field, Message string }

func (e *fieldError) Error() string { return e.Field + ": " + e.Message }

// FieldDecodeError returns an error that DecodeError reports as a malformed field.
func FieldDecodeError(field, format string, args ...any) error {
	return &fieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func describeType(goType string) string {
	switch {
	case strings.HasSuffix(goType, "Duration"):
		return `a duration such as "168h"`
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	}
	return goType
}

// jsonFieldPath drops the Go names of embedded structs from an UnmarshalTypeError path
// ("FlagConfig.on" is the JSON field "on"): API field names are lowercase.
func jsonFieldPath(p string) string {
	parts := strings.Split(p, ".")
	out := parts[:0]
	for _, s := range parts {
		if s != "" && !(s[0] >= 'A' && s[0] <= 'Z') {
			out = append(out, s)
		}
	}
	return strings.Join(out, ".")
}
