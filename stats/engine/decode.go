package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// DecodeRequest parses and validates the JSON body of `stats analyze` / POST /v1/analyze
// (STATS.md §11). It is strict: unknown fields, missing required fields, wrong types,
// non-finite or out-of-range numbers and trailing data are rejected with an *[InvalidError]
// naming the field by its JSON path. Absent options take their defaults: frequentist,
// relative, α = 0.05, two-sided, no correction; "sequential": {} uses tuning 5000.
func DecodeRequest(data []byte) (Request, error) {
	if req, ok := fastDecode(data); ok {
		if err := validateRequest(req); err != nil {
			return Request{}, err
		}
		return req, nil
	}
	return decodeRequestSlow(data)
}

// decodeRequestSlow decodes object by object, so that any problem is reported with the
// JSON path of the field.
func decodeRequestSlow(data []byte) (Request, error) {
	root, err := parseRoot(data)
	if err != nil {
		return Request{}, err
	}
	if err := root.allow("engine", "difference", "alpha", "sided", "sequential", "prior", "correction", "srm", "metrics"); err != nil {
		return Request{}, err
	}
	req := Request{Options: DefaultOptions(), Correction: NoCorrection}
	var errs decodeErrs
	req.Engine = EngineKind(errs.str(root.str("engine", string(Frequentist))))
	req.Difference = Difference(errs.str(root.str("difference", string(Relative))))
	req.Sided = Sided(errs.str(root.str("sided", string(TwoSided))))
	req.Correction = Correction(errs.str(root.str("correction", string(NoCorrection))))
	if a, ok, err := root.num("alpha"); errs.add(err) && ok {
		req.Alpha = a
	}
	if errs.err != nil {
		return Request{}, errs.err
	}
	if seq, ok, err := root.child("sequential"); err != nil {
		return Request{}, err
	} else if ok {
		s, err := decodeSequential(seq)
		if err != nil {
			return Request{}, err
		}
		req.Sequential = &s
	}
	if pr, ok, err := root.child("prior"); err != nil {
		return Request{}, err
	} else if ok {
		p, err := decodePrior(pr)
		if err != nil {
			return Request{}, err
		}
		req.Prior = &p
	}
	if s, ok, err := root.child("srm"); err != nil {
		return Request{}, err
	} else if ok {
		srm, err := decodeSRM(s)
		if err != nil {
			return Request{}, err
		}
		req.SRM = &srm
	}
	metrics, ok, err := root.array("metrics")
	if err != nil {
		return Request{}, err
	}
	if !ok && req.SRM == nil {
		return Request{}, invalid("metrics", "is required")
	}
	if ok {
		req.Metrics = make([]Metric, len(metrics))
	}
	for i, raw := range metrics {
		m, err := decodeMetric(fmt.Sprintf("metrics[%d]", i), raw)
		if err != nil {
			return Request{}, err
		}
		req.Metrics[i] = m
	}
	if err := validateRequest(req); err != nil {
		return Request{}, err
	}
	return req, nil
}

// DecodePowerRequest parses and validates the JSON body of `stats power` / POST /v1/power.
// mean, variance and users are required; effect is optional (without it only the MDE is
// computed); variants, alpha and target_power default to 2, 0.05 and 0.8.
func DecodePowerRequest(data []byte) (PowerRequest, error) {
	root, err := parseRoot(data)
	if err != nil {
		return PowerRequest{}, err
	}
	if err := root.allow("mean", "variance", "effect", "users", "variants", "alpha", "target_power", "sequential"); err != nil {
		return PowerRequest{}, err
	}
	var req PowerRequest
	var errs decodeErrs
	req.Mean = errs.required(root, "mean")
	req.Variance = errs.required(root, "variance")
	if e, ok, err := root.num("effect"); errs.add(err) && ok {
		req.Effect = &e
	}
	if u, ok, err := root.integer("users"); errs.add(err) {
		if !ok {
			errs.add(invalid("users", "is required"))
		}
		req.Users = u
	}
	req.Variants = 2
	if v, ok, err := root.integer("variants"); errs.add(err) && ok {
		if v > math.MaxInt32 {
			errs.add(invalid("variants", "is too large"))
		}
		req.Variants = int(v)
	}
	req.Alpha = DefaultAlpha
	if a, ok, err := root.num("alpha"); errs.add(err) && ok {
		req.Alpha = a
	}
	req.TargetPower = DefaultTargetPower
	if t, ok, err := root.num("target_power"); errs.add(err) && ok {
		req.TargetPower = t
	}
	if errs.err != nil {
		return PowerRequest{}, errs.err
	}
	if seq, ok, err := root.child("sequential"); err != nil {
		return PowerRequest{}, err
	} else if ok {
		s, err := decodeSequential(seq)
		if err != nil {
			return PowerRequest{}, err
		}
		req.Sequential = &s
	}
	// Zero values are meaningful here (alpha 0 is invalid, not "default"), so validate
	// without applying Power's defaults.
	if err := req.validate(); err != nil {
		return PowerRequest{}, err
	}
	return req, nil
}

func decodeSequential(o object) (Sequential, error) {
	if err := o.allow("tuning"); err != nil {
		return Sequential{}, err
	}
	s := Sequential{Tuning: DefaultSequentialTuning}
	t, ok, err := o.num("tuning")
	if err != nil {
		return s, err
	}
	if ok {
		if !(t > 0) {
			return s, invalid(o.path+".tuning", "must be greater than 0")
		}
		s.Tuning = t
	}
	return s, nil
}

func decodePrior(o object) (Prior, error) {
	if err := o.allow("mean", "variance", "proper"); err != nil {
		return Prior{}, err
	}
	var p Prior
	proper, ok, err := o.boolean("proper")
	if err != nil {
		return p, err
	}
	if !ok {
		return p, invalid(o.path+".proper", "is required (false for a flat prior)")
	}
	p.Proper = proper
	var errs decodeErrs
	if proper {
		p.Mean = errs.required(o, "mean")
		p.Variance = errs.required(o, "variance")
	} else {
		// A flat prior ignores mean and variance, but they must still be numbers if given.
		if m, ok, err := o.num("mean"); errs.add(err) && ok {
			p.Mean = m
		}
		if v, ok, err := o.num("variance"); errs.add(err) && ok {
			p.Variance = v
		}
	}
	return p, errs.err
}

func decodeSRM(o object) (SRMInput, error) {
	if err := o.allow("counts", "weights"); err != nil {
		return SRMInput{}, err
	}
	counts, ok, err := o.array("counts")
	if err != nil {
		return SRMInput{}, err
	}
	if !ok {
		return SRMInput{}, invalid(o.path+".counts", "is required")
	}
	s := SRMInput{Counts: make([]int64, len(counts))}
	for i, raw := range counts {
		c, err := parseInteger(fmt.Sprintf("%s.counts[%d]", o.path, i), raw)
		if err != nil {
			return SRMInput{}, err
		}
		s.Counts[i] = c
	}
	weights, ok, err := o.array("weights")
	if err != nil {
		return SRMInput{}, err
	}
	s.Weights = make([]float64, len(counts))
	if !ok {
		// Without weights the traffic is assumed to be split evenly.
		for i := range s.Weights {
			s.Weights[i] = 1
		}
		return s, nil
	}
	s.Weights = make([]float64, len(weights))
	for i, raw := range weights {
		w, err := parseNumber(fmt.Sprintf("%s.weights[%d]", o.path, i), raw)
		if err != nil {
			return SRMInput{}, err
		}
		s.Weights[i] = w
	}
	return s, nil
}

var variantKeys = []string{"key", "n", "sum", "sum_squares",
	"denominator_sum", "denominator_sum_squares", "main_denominator_sum_product",
	"covariate_sum", "covariate_sum_squares", "main_covariate_sum_product"}

func decodeMetric(path string, raw json.RawMessage) (Metric, error) {
	o, err := parseObject(path, raw)
	if err != nil {
		return Metric{}, err
	}
	if err := o.allow("key", "kind", "inverse", "cuped", "variants"); err != nil {
		return Metric{}, err
	}
	var m Metric
	var errs decodeErrs
	key, ok, err := o.stringField("key")
	if errs.add(err) && !ok {
		errs.add(invalid(path+".key", "is required"))
	}
	m.Key = key
	kind, ok, err := o.stringField("kind")
	if errs.add(err) && !ok {
		errs.add(invalid(path+".kind", "is required"))
	}
	m.Kind = Kind(kind)
	if b, ok, err := o.boolean("inverse"); errs.add(err) && ok {
		m.Inverse = b
	}
	if b, ok, err := o.boolean("cuped"); errs.add(err) && ok {
		m.CUPED = b
	}
	if errs.err != nil {
		return Metric{}, errs.err
	}
	switch m.Kind {
	case KindProportion, KindMean, KindRatio:
	default:
		return Metric{}, invalid(path+".kind", "unknown kind %q (want proportion, mean or ratio)", m.Kind)
	}
	variants, ok, err := o.array("variants")
	if err != nil {
		return Metric{}, err
	}
	if !ok {
		return Metric{}, invalid(path+".variants", "is required")
	}
	m.Variants = make([]VariantSums, len(variants))
	for j, raw := range variants {
		vp := fmt.Sprintf("%s.variants[%d]", path, j)
		v, err := decodeVariant(vp, raw, m.Kind, m.CUPED)
		if err != nil {
			return Metric{}, err
		}
		m.Variants[j] = v
	}
	return m, nil
}

func decodeVariant(path string, raw json.RawMessage, kind Kind, cuped bool) (VariantSums, error) {
	o, err := parseObject(path, raw)
	if err != nil {
		return VariantSums{}, err
	}
	if err := o.allow(variantKeys...); err != nil {
		return VariantSums{}, err
	}
	var v VariantSums
	key, ok, err := o.stringField("key")
	if err != nil {
		return v, err
	}
	if !ok {
		return v, invalid(path+".key", "is required")
	}
	v.Key = key
	n, ok, err := o.integer("n")
	if err != nil {
		return v, err
	}
	if !ok {
		return v, invalid(path+".n", "is required")
	}
	v.N = n
	// Every sum present is type-checked; those the kind needs must be present.
	for _, f := range sumFields(KindRatio, true, &v) {
		if x, ok, err := o.num(f.name); err != nil {
			return v, err
		} else if ok {
			*f.value = x
		}
	}
	for _, f := range sumFields(kind, cuped, &v) {
		if _, ok := o.get(f.name); !ok {
			if cuped && isCovariateField(f.name) {
				return v, invalid(path+"."+f.name, "is required when cuped is true")
			}
			return v, invalid(path+"."+f.name, "is required for a %s metric", kind)
		}
	}
	return v, nil
}

func isCovariateField(name string) bool {
	return name == "covariate_sum" || name == "covariate_sum_squares" || name == "main_covariate_sum_product"
}

// object is one decoded JSON object with its path, for precise error messages.
type object struct {
	path   string
	fields map[string]json.RawMessage
}

func parseRoot(data []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return object{}, invalid("", "the body is empty; expected a JSON object")
		}
		return object{}, invalid("", "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return object{}, invalid("", "unexpected data after the JSON object")
	}
	return parseObject("", raw)
}

func parseObject(path string, raw json.RawMessage) (object, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return object{}, invalid(path, "must be a JSON object")
	}
	o := object{path: path}
	if err := json.Unmarshal(raw, &o.fields); err != nil {
		return object{}, invalid(path, "malformed JSON object: %v", err)
	}
	return o, nil
}

func (o object) field(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// get returns the raw value of key; a JSON null counts as absent.
func (o object) get(key string) (json.RawMessage, bool) {
	raw, ok := o.fields[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// allow rejects fields outside keys, so a misspelt field is an error rather than a
// silently ignored input. With several unknown fields the first in sorted order is named,
// so the answer does not depend on map order.
func (o object) allow(keys ...string) error {
	var unknown []string
	for k := range o.fields {
		if !slices.Contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return invalid(o.field(slices.Min(unknown)), "unknown field")
}

func (o object) stringField(key string) (string, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return "", false, nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, invalid(o.field(key), "must be a string")
	}
	return s, true, nil
}

// str returns the string at key or def when absent.
func (o object) str(key, def string) (string, error) {
	s, ok, err := o.stringField(key)
	if err != nil || !ok {
		return def, err
	}
	return s, nil
}

func (o object) boolean(key string) (bool, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return false, false, nil
	}
	switch string(raw) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, invalid(o.field(key), "must be true or false")
}

func (o object) num(key string) (float64, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false, nil
	}
	x, err := parseNumber(o.field(key), raw)
	return x, err == nil, err
}

func (o object) integer(key string) (int64, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false, nil
	}
	n, err := parseInteger(o.field(key), raw)
	return n, err == nil, err
}

func (o object) array(key string) ([]json.RawMessage, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, false, nil
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, false, invalid(o.field(key), "must be an array")
	}
	return items, true, nil
}

func (o object) child(key string) (object, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return object{}, false, nil
	}
	c, err := parseObject(o.field(key), raw)
	return c, err == nil, err
}

func parseNumber(field string, raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, invalid(field, "must be a number")
	}
	x, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(x, 0) {
		return 0, invalid(field, "is out of the range of a float64")
	}
	return x, nil
}

// maxExactInt is 2⁵³: counts above it cannot be represented exactly in float64.
const maxExactInt = 1 << 53

func parseInteger(field string, raw json.RawMessage) (int64, error) {
	x, err := parseNumber(field, raw)
	if err != nil {
		return 0, err
	}
	switch {
	case x != math.Trunc(x):
		return 0, invalid(field, "must be a whole number")
	case x < 0:
		return 0, invalid(field, "must not be negative")
	case x > maxExactInt:
		return 0, invalid(field, "is too large")
	}
	return int64(x), nil
}

// decodeErrs keeps the first error of a run of field reads.
type decodeErrs struct{ err error }

// add records err if it is the first; it reports whether err was nil.
func (d *decodeErrs) add(err error) bool {
	if err != nil && d.err == nil {
		d.err = err
	}
	return err == nil
}

func (d *decodeErrs) str(s string, err error) string {
	d.add(err)
	return s
}

func (d *decodeErrs) required(o object, key string) float64 {
	x, ok, err := o.num(key)
	if d.add(err) && !ok {
		d.add(invalid(o.field(key), "is required"))
	}
	return x
}
