package engine

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (with errors.Is) by every error that rejects a whole request or
// power request: unknown kind or option, missing or malformed field, negative n, α outside
// (0,1), fewer than two variants, inconsistent SRM input. The concrete error is an
// *[InvalidError] naming the field.
var ErrInvalid = errors.New("invalid request")

// InvalidError rejects a whole request. Field is the JSON path of the offending field,
// e.g. "metrics[0].variants[1].n" (empty when the body as a whole is malformed).
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "invalid request: " + e.Message
	}
	return fmt.Sprintf("invalid request: %s: %s", e.Field, e.Message)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) *InvalidError {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Per-variant error codes. A comparison that cannot be computed carries one of these in
// [VariantError] instead of numbers; the rest of the request is still analysed.
const (
	// CodeTooFewUnits: an arm has fewer than 2 units, so no variance can be estimated.
	CodeTooFewUnits = "too_few_units"
	// CodeZeroVariance: the standard error of the difference is zero (e.g. both arms
	// converted 0% or 100%), so no test statistic exists.
	CodeZeroVariance = "zero_variance"
	// CodeZeroBaseline: a relative effect was asked but the control mean is 0 (or, for a
	// Bayesian absolute analysis with a proper prior, the prior cannot be rescaled).
	CodeZeroBaseline = "zero_baseline"
	// CodeZeroDenominator: a ratio metric whose denominator sum is 0 in an arm, so the
	// ratio is undefined.
	CodeZeroDenominator = "zero_denominator"
	// CodeInconsistentSums: the sums imply a negative variance (e.g. sum_squares smaller
	// than sum²/n), which no real data can produce.
	CodeInconsistentSums = "inconsistent_sums"
	// CodeNotFinite: the inputs are so large that a result overflowed float64.
	CodeNotFinite = "not_finite"
)

// VariantError says why a variant's result could not be computed.
type VariantError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *VariantError) Error() string { return e.Code + ": " + e.Message }

func variantErr(code, format string, args ...any) *VariantError {
	return &VariantError{Code: code, Message: fmt.Sprintf(format, args...)}
}
