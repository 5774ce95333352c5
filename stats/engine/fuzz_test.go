package engine

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/switchyard-io/switchyard/stats/internal/refcases"
)

func addSeeds(f *testing.F, command string) {
	cases, err := refcases.Load()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		if c.Command == command {
			f.Add([]byte(c.Request))
		}
	}
}

// FuzzDecodeRequest feeds arbitrary bodies to the request decoder. Whatever the input:
// no panic; a rejection is an *InvalidError; the fast and the path-aware decoders agree;
// an accepted request analyses without error into JSON (which proves no NaN or infinity
// escaped: encoding/json refuses them) and survives an encode/decode round trip.
func FuzzDecodeRequest(f *testing.F) {
	addSeeds(f, "analyze")
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"metrics":[null]}`, `{"metrics":[{"key":"m","kind":"mean","variants":[null]}]}`,
		`{"srm":{"counts":[1,null]}}`, `{"Engine":"bayesian","metrics":[]}`, `{"engine":"bayesian"} x`,
		`{"metrics":[{"key":"m","kind":"proportion","variants":[{"key":"a","n":1e300,"sum":1},{"key":"b","n":2,"sum":1}]}]}`,
		`{"metrics":[{"key":"m","kind":"mean","cuped":true,"variants":[{"key":"a","n":3,"sum":1e308,"sum_squares":1e308,"covariate_sum":-1e308,"covariate_sum_squares":1e308,"main_covariate_sum_product":1e308},{"key":"b","n":2,"sum":1,"sum_squares":1,"covariate_sum":0,"covariate_sum_squares":0,"main_covariate_sum_product":0}]}]}`,
		`{"correction":"holm","sequential":{"tuning":1e-300},"metrics":[{"key":"m","kind":"ratio","variants":[{"key":"a","n":2,"sum":1,"sum_squares":1,"denominator_sum":1e-300,"denominator_sum_squares":0,"main_denominator_sum_product":0},{"key":"b","n":2,"sum":5e-324,"sum_squares":0,"denominator_sum":1,"denominator_sum_squares":1,"main_denominator_sum_product":0}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		slow, slowErr := decodeRequestSlow(data)
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("rejection is not an *InvalidError: %v", err)
			}
			if slowErr == nil || slowErr.Error() != err.Error() {
				t.Fatalf("decoders disagree: %v / %v", err, slowErr)
			}
			return
		}
		if slowErr != nil || !reflect.DeepEqual(req, slow) {
			t.Fatalf("decoders disagree:\n%+v\n%+v (%v)", req, slow, slowErr)
		}
		res, err := Analyze(req)
		if err != nil {
			t.Fatalf("a decoded request must analyse: %v", err)
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("the response must be valid JSON: %v", err)
		}
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeRequest(body)
		if err != nil || !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed the request: %v\n%+v\n%+v", err, req, again)
		}
	})
}

// FuzzDecodePowerRequest: no panic, rejections are *InvalidError, accepted plans compute.
func FuzzDecodePowerRequest(f *testing.F) {
	addSeeds(f, "power")
	f.Add([]byte(`{"mean":-3,"variance":1e-300,"users":9007199254740992,"variants":2147483647}`))
	f.Add([]byte(`{"mean":1,"variance":1e300,"users":4,"target_power":0.9999999}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodePowerRequest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("rejection is not an *InvalidError: %v", err)
			}
			return
		}
		res, err := Power(req)
		if err != nil {
			t.Fatalf("a decoded plan must compute: %v", err)
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("the response must be valid JSON: %v", err)
		}
		if res.Power != nil && !(*res.Power >= 0 && *res.Power <= 1) {
			t.Fatalf("power %v outside [0, 1]", *res.Power)
		}
	})
}
