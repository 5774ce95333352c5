package murmur3

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

type vectors struct {
	Hashes []struct {
		Input string `json:"input"`
		Seed  uint32 `json:"seed"`
		Hash  uint32 `json:"hash"`
	} `json:"hashes"`
	Buckets []struct {
		Salt   string `json:"salt"`
		Value  string `json:"value"`
		Bucket uint32 `json:"bucket"`
	} `json:"buckets"`
}

// The vectors were computed by the mmh3 reference (sdks/spec/testdata/generate.py), independently
// of this package.
func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "spec", "testdata", "murmur3.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Hashes) < 20 || len(v.Buckets) == 0 {
		t.Fatalf("too few vectors: %d hashes, %d buckets", len(v.Hashes), len(v.Buckets))
	}
	return v
}

func TestReferenceVectors(t *testing.T) {
	v := loadVectors(t)
	for _, h := range v.Hashes {
		if got := Sum32([]byte(h.Input), h.Seed); got != h.Hash {
			t.Errorf("Sum32(%q, %d) = %d, want %d", h.Input, h.Seed, got, h.Hash)
		}
		if got := SumString(h.Input, h.Seed); got != h.Hash {
			t.Errorf("SumString(%q, %d) = %d, want %d", h.Input, h.Seed, got, h.Hash)
		}
		// Every split point of the two-part form gives the same hash.
		for i := 0; i <= len(h.Input); i++ {
			a, b := h.Input[:i], h.Input[i:]
			if got := Sum32Concat(a, b, h.Seed); got != h.Hash {
				t.Errorf("Sum32Concat(%q, %q, %d) = %d, want %d", a, b, h.Seed, got, h.Hash)
			}
			if got := Sum32ConcatBytes(a, []byte(b), h.Seed); got != h.Hash {
				t.Errorf("Sum32ConcatBytes(%q, %q, %d) = %d, want %d", a, b, h.Seed, got, h.Hash)
			}
		}
	}
	for _, b := range v.Buckets {
		if got := Sum32Concat(b.Salt+".", b.Value, 0) % 100000; got != b.Bucket {
			t.Errorf("bucket(%q, %q) = %d, want %d", b.Salt, b.Value, got, b.Bucket)
		}
	}
}

func TestConcatMatchesWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		buf := make([]byte, r.IntN(64))
		for i := range buf {
			buf[i] = byte(r.UintN(256))
		}
		split := 0
		if len(buf) > 0 {
			split = r.IntN(len(buf) + 1)
		}
		seed := r.Uint32()
		want := Sum32(buf, seed)
		if got := Sum32Concat(string(buf[:split]), string(buf[split:]), seed); got != want {
			t.Fatalf("Sum32Concat(%x | %x) = %d, want %d", buf[:split], buf[split:], got, want)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	key := []byte("user-12345")
	if n := testing.AllocsPerRun(100, func() { _ = Sum32ConcatBytes("my-flag.", key, 0) }); n != 0 {
		t.Errorf("Sum32ConcatBytes allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Sum32Concat("my-flag.", "user-12345", 0) }); n != 0 {
		t.Errorf("Sum32Concat allocates %v times", n)
	}
}

// BenchmarkSum32Concat measures hashing a typical salt prefix and context key (bucketing's cost).
func BenchmarkSum32Concat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Sum32Concat("checkout-redesign.", "user-7f3a9c21-5b", 0)
	}
}

// BenchmarkPrefixSumString measures bucketing's hash: a prehashed "salt." prefix and a context key.
func BenchmarkPrefixSumString(b *testing.B) {
	p := NewPrefix("checkout-redesign.", 0)
	b.ReportAllocs()
	for b.Loop() {
		_ = p.SumString("user-7f3a9c21-5b")
	}
}
