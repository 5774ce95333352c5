// Package cli implements the `stats analyze` and `stats power` subcommands: one JSON request
// on stdin, one JSON response on stdout. An invalid request exits with status 2 and the
// uniform error body {"error":{"code","message","field"}} on stderr — the same body the HTTP
// API answers with status 400.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/switchyard-io/switchyard/stats/engine"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1 // reading stdin or writing stdout failed
	ExitInvalid = 2 // the request was rejected
)

// ErrorCode is the code of a rejected request, shared with the HTTP API.
const ErrorCode = "invalid_argument"

// ErrorBody is the uniform error shape.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Analyze runs `stats analyze`.
func Analyze(stdin io.Reader, stdout, stderr io.Writer) int {
	return serve(stdin, stdout, stderr, func(body []byte) (any, error) {
		req, err := engine.DecodeRequest(body)
		if err != nil {
			return nil, err
		}
		return engine.Analyze(req)
	})
}

// Power runs `stats power`.
func Power(stdin io.Reader, stdout, stderr io.Writer) int {
	return serve(stdin, stdout, stderr, func(body []byte) (any, error) {
		req, err := engine.DecodePowerRequest(body)
		if err != nil {
			return nil, err
		}
		return engine.Power(req)
	})
}

func serve(stdin io.Reader, stdout, stderr io.Writer, handle func([]byte) (any, error)) int {
	body, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "stats: reading stdin: %v\n", err)
		return ExitFailure
	}
	res, err := handle(body)
	if err != nil {
		writeError(stderr, err)
		return ExitInvalid
	}
	out, err := json.Marshal(res)
	if err != nil { // unreachable: results never hold NaN or infinities
		fmt.Fprintf(stderr, "stats: encoding the response: %v\n", err)
		return ExitFailure
	}
	if _, err := stdout.Write(append(out, '\n')); err != nil {
		fmt.Fprintf(stderr, "stats: writing stdout: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// Body returns the error body for a rejected request.
func Body(err error) ErrorBody {
	d := ErrorDetail{Code: ErrorCode, Message: err.Error()}
	var inv *engine.InvalidError
	if errors.As(err, &inv) {
		d.Message, d.Field = inv.Message, inv.Field
	}
	return ErrorBody{Error: d}
}

func writeError(w io.Writer, err error) {
	b, _ := json.Marshal(Body(err))
	w.Write(append(b, '\n'))
}
