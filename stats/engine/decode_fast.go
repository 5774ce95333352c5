package engine

import (
	"bytes"
	"encoding/json"
	"math"
)

// The fast path of DecodeRequest: one json.Unmarshal into typed structs. It reports ok only
// when the body is certainly well-formed; anything unusual (a type mismatch, an unknown or
// mis-cased field, a null where a value is needed, a fractional count) sends DecodeRequest
// to the path-aware decoder in decode.go, which names the offending field. Both paths end
// in the same validateRequest, and the fuzz test checks that they agree.

type wireRequest struct {
	Engine     *string         `json:"engine"`
	Difference *string         `json:"difference"`
	Alpha      *float64        `json:"alpha"`
	Sided      *string         `json:"sided"`
	Sequential *wireSequential `json:"sequential"`
	Prior      *wirePrior      `json:"prior"`
	Correction *string         `json:"correction"`
	SRM        *wireSRM        `json:"srm"`
	Metrics    *[]*wireMetric  `json:"metrics"`
}

type wireSequential struct {
	Tuning *float64 `json:"tuning"`
}

type wirePrior struct {
	Mean     *float64 `json:"mean"`
	Variance *float64 `json:"variance"`
	Proper   *bool    `json:"proper"`
}

type wireSRM struct {
	Counts  *[]*float64 `json:"counts"`
	Weights *[]*float64 `json:"weights"`
}

type wireMetric struct {
	Key      *string         `json:"key"`
	Kind     *string         `json:"kind"`
	Inverse  *bool           `json:"inverse"`
	CUPED    *bool           `json:"cuped"`
	Variants *[]*wireVariant `json:"variants"`
}

type wireVariant struct {
	Key                       *string  `json:"key"`
	N                         *float64 `json:"n"`
	Sum                       *float64 `json:"sum"`
	SumSquares                *float64 `json:"sum_squares"`
	DenominatorSum            *float64 `json:"denominator_sum"`
	DenominatorSumSquares     *float64 `json:"denominator_sum_squares"`
	MainDenominatorSumProduct *float64 `json:"main_denominator_sum_product"`
	CovariateSum              *float64 `json:"covariate_sum"`
	CovariateSumSquares       *float64 `json:"covariate_sum_squares"`
	MainCovariateSumProduct   *float64 `json:"main_covariate_sum_product"`
}

// knownKeys are every object key of the request contract. encoding/json matches field
// names case-insensitively; requiring every key to be spelt exactly like one of these
// restores the strictness of the slow path.
var knownKeys = map[string]bool{}

func init() {
	for _, k := range []string{"engine", "difference", "alpha", "sided", "sequential", "prior", "correction", "srm", "metrics",
		"tuning", "mean", "variance", "proper", "counts", "weights", "inverse", "cuped", "kind", "variants"} {
		knownKeys[k] = true
	}
	for _, k := range variantKeys {
		knownKeys[k] = true
	}
}

func fastDecode(data []byte) (Request, bool) {
	var w wireRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if dec.Decode(&w) != nil || dec.InputOffset() != int64(len(bytes.TrimRight(data, " \t\r\n"))) || !exactKeys(data) {
		return Request{}, false
	}
	req := Request{Options: DefaultOptions(), Correction: NoCorrection}
	setString(&req.Engine, w.Engine)
	setString(&req.Difference, w.Difference)
	setString(&req.Sided, w.Sided)
	setString(&req.Correction, w.Correction)
	if w.Alpha != nil {
		req.Alpha = *w.Alpha
	}
	if w.Sequential != nil {
		req.Sequential = &Sequential{Tuning: DefaultSequentialTuning}
		if w.Sequential.Tuning != nil {
			if !(*w.Sequential.Tuning > 0) {
				return Request{}, false
			}
			req.Sequential.Tuning = *w.Sequential.Tuning
		}
	}
	if p := w.Prior; p != nil {
		if p.Proper == nil || *p.Proper && (p.Mean == nil || p.Variance == nil) {
			return Request{}, false
		}
		req.Prior = &Prior{Proper: *p.Proper}
		if p.Mean != nil {
			req.Prior.Mean = *p.Mean
		}
		if p.Variance != nil {
			req.Prior.Variance = *p.Variance
		}
	}
	if s := w.SRM; s != nil {
		if s.Counts == nil {
			return Request{}, false
		}
		srm := SRMInput{Counts: make([]int64, len(*s.Counts))}
		for i, c := range *s.Counts {
			n, ok := wholeNumber(c)
			if !ok {
				return Request{}, false
			}
			srm.Counts[i] = n
		}
		if s.Weights == nil {
			srm.Weights = make([]float64, len(srm.Counts))
			for i := range srm.Weights {
				srm.Weights[i] = 1
			}
		} else {
			srm.Weights = make([]float64, len(*s.Weights))
			for i, x := range *s.Weights {
				if x == nil {
					return Request{}, false
				}
				srm.Weights[i] = *x
			}
		}
		req.SRM = &srm
	}
	if w.Metrics == nil {
		return req, req.SRM != nil
	}
	req.Metrics = make([]Metric, len(*w.Metrics))
	for i, wm := range *w.Metrics {
		if wm == nil || wm.Key == nil || wm.Kind == nil || wm.Variants == nil {
			return Request{}, false
		}
		m := Metric{Key: *wm.Key, Kind: Kind(*wm.Kind), Variants: make([]VariantSums, len(*wm.Variants))}
		switch m.Kind {
		case KindProportion, KindMean, KindRatio:
		default:
			return Request{}, false
		}
		if wm.Inverse != nil {
			m.Inverse = *wm.Inverse
		}
		if wm.CUPED != nil {
			m.CUPED = *wm.CUPED
		}
		for j, wv := range *wm.Variants {
			if wv == nil || wv.Key == nil || wv.N == nil || wv.Sum == nil {
				return Request{}, false
			}
			n, ok := wholeNumber(wv.N)
			if !ok {
				return Request{}, false
			}
			v := VariantSums{Key: *wv.Key, N: n, Sum: *wv.Sum}
			optional := [...]struct {
				src    *float64
				dst    *float64
				needed bool
			}{
				{wv.SumSquares, &v.SumSquares, m.Kind != KindProportion},
				{wv.DenominatorSum, &v.DenominatorSum, m.Kind == KindRatio},
				{wv.DenominatorSumSquares, &v.DenominatorSumSquares, m.Kind == KindRatio},
				{wv.MainDenominatorSumProduct, &v.MainDenominatorSumProduct, m.Kind == KindRatio},
				{wv.CovariateSum, &v.CovariateSum, m.CUPED},
				{wv.CovariateSumSquares, &v.CovariateSumSquares, m.CUPED},
				{wv.MainCovariateSumProduct, &v.MainCovariateSumProduct, m.CUPED},
			}
			for _, f := range optional {
				if f.src == nil {
					if f.needed {
						return Request{}, false
					}
					continue
				}
				*f.dst = *f.src
			}
			m.Variants[j] = v
		}
		req.Metrics[i] = m
	}
	return req, true
}

func setString[T ~string](dst *T, src *string) {
	if src != nil {
		*dst = T(*src)
	}
}

func wholeNumber(x *float64) (int64, bool) {
	if x == nil || *x != math.Trunc(*x) || *x < 0 || *x > maxExactInt {
		return 0, false
	}
	return int64(*x), true
}

// exactKeys reports whether every object key in data is spelt exactly as a contract key.
// It assumes data is valid JSON (the decoder has accepted it).
func exactKeys(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		start := i + 1
		escaped := false
		for i++; i < len(data); i++ {
			if data[i] == '\\' {
				escaped = true
				i++
				continue
			}
			if data[i] == '"' {
				break
			}
		}
		end := i
		j := i + 1
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
			j++
		}
		if j < len(data) && data[j] == ':' && (escaped || !knownKeys[string(data[start:end])]) {
			return false
		}
	}
	return true
}
