package evaluation_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// randomKeys returns n distinct, deterministic context keys.
func randomKeys(n int) []string {
	r := rand.New(rand.NewPCG(42, 4242))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d-%016x", i, r.Uint64())
	}
	return keys
}

var boolVariations = []ruleset.Variation{{Key: "treatment", Value: []byte("true")}, {Key: "control", Value: []byte("false")}}

func splitFlag(key, salt string, weights ...ruleset.WeightedVariation) ruleset.Flag {
	return ruleset.Flag{
		Key: key, Kind: ruleset.KindBoolean, Variations: boolVariations, On: true, Salt: salt,
		Fallthrough: ruleset.Serve{Rollout: &ruleset.Rollout{Variations: weights}},
	}
}

func compileFlags(t testing.TB, flags ...ruleset.Flag) *evaluation.Ruleset {
	t.Helper()
	rs, err := evaluation.Compile(&ruleset.Ruleset{SchemaVersion: 1, Version: 1, Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	if p := rs.Problems(); len(p) > 0 {
		t.Fatalf("unexpected problems: %v", p)
	}
	return rs
}

func wv(variation string, weight int) ruleset.WeightedVariation {
	return ruleset.WeightedVariation{Variation: variation, Weight: weight}
}

// TestSplitShares: over 100,000 random keys, a split's shares land within ±1 percentage point of
// the weights.
func TestSplitShares(t *testing.T) {
	keys := randomKeys(100000)
	for _, tc := range []struct {
		name      string
		treatment int // weight, in units of 1/100000
	}{
		{"50/50", 50000},
		{"10/90", 10000},
		{"1/99", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := compileFlags(t, splitFlag("f", "", wv("treatment", tc.treatment), wv("control", ruleset.WeightScale-tc.treatment)))
			n := 0
			for _, k := range keys {
				if rs.Evaluate("f", evaluation.NewContext(k)).VariationKey() == "treatment" {
					n++
				}
			}
			share := float64(n) / float64(len(keys))
			target := float64(tc.treatment) / ruleset.WeightScale
			if math.Abs(share-target) > 0.01 {
				t.Errorf("treatment share %.4f, want %.4f ± 0.01", share, target)
			}
			t.Logf("treatment share %.4f (target %.2f)", share, target)
		})
	}
}

// TestRolloutIncreaseIsMonotonic: raising a two-way rollout from 10% to 20% never moves a context
// out of the treatment it had, whichever of the two variations is listed first.
func TestRolloutIncreaseIsMonotonic(t *testing.T) {
	keys := randomKeys(100000)
	for _, tc := range []struct {
		name          string
		before, after ruleset.Flag
	}{
		{"treatment first",
			splitFlag("f", "", wv("treatment", 10000), wv("control", 90000)),
			splitFlag("f", "", wv("treatment", 20000), wv("control", 80000))},
		{"treatment last",
			splitFlag("f", "", wv("control", 90000), wv("treatment", 10000)),
			splitFlag("f", "", wv("control", 80000), wv("treatment", 20000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, after := compileFlags(t, tc.before), compileFlags(t, tc.after)
			treated, moved, gained := 0, 0, 0
			for _, k := range keys {
				ctx := evaluation.NewContext(k)
				b := before.Evaluate("f", ctx).VariationKey() == "treatment"
				a := after.Evaluate("f", ctx).VariationKey() == "treatment"
				switch {
				case b && !a:
					moved++
				case b:
					treated++
				case a:
					gained++
				}
			}
			if moved != 0 {
				t.Errorf("%d contexts left the treatment when the rollout grew", moved)
			}
			if treated == 0 || gained == 0 {
				t.Errorf("degenerate test: %d stayed treated, %d joined", treated, gained)
			}
		})
	}
}

// TestSaltsAssignIndependently: two 50/50 flags with different salts assign independently; the
// chi-squared statistic of the 2x2 table (1 degree of freedom) stays below 10.83 (p = 0.001).
// Flags with the same salt are the control: they assign identically.
func TestSaltsAssignIndependently(t *testing.T) {
	keys := randomKeys(100000)
	rs := compileFlags(t,
		splitFlag("a", "salt-a", wv("treatment", 50000), wv("control", 50000)),
		splitFlag("b", "salt-b", wv("treatment", 50000), wv("control", 50000)),
		splitFlag("c", "salt-a", wv("treatment", 50000), wv("control", 50000)),
	)
	chi2 := func(x, y string) float64 {
		var table [2][2]float64
		for _, k := range keys {
			ctx := evaluation.NewContext(k)
			i, j := 0, 0
			if rs.Evaluate(x, ctx).VariationKey() == "treatment" {
				i = 1
			}
			if rs.Evaluate(y, ctx).VariationKey() == "treatment" {
				j = 1
			}
			table[i][j]++
		}
		n := float64(len(keys))
		stat := 0.0
		for i := range 2 {
			for j := range 2 {
				expected := (table[i][0] + table[i][1]) * (table[0][j] + table[1][j]) / n
				stat += (table[i][j] - expected) * (table[i][j] - expected) / expected
			}
		}
		return stat
	}
	if got := chi2("a", "b"); got >= 10.83 {
		t.Errorf("different salts: chi-squared %.2f >= 10.83: assignments are not independent", got)
	} else {
		t.Logf("different salts: chi-squared %.3f", got)
	}
	if got := chi2("a", "c"); got < 1000 {
		t.Errorf("same salt: chi-squared %.2f; identical assignments should be strongly dependent", got)
	}
}
