package switchyard

import (
	"bufio"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: time.Second}
	for attempt := 0; attempt < 40; attempt++ {
		ceiling := min(100*time.Millisecond<<min(attempt, 30), time.Second)
		d := b.next()
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, ceiling/2, ceiling)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"Mon, 01 Jan 2024 00:00:30 GMT", 30 * time.Second, true},
		{"Sun, 31 Dec 2023 23:00:00 GMT", 0, true},
		{"soon", 0, false},
		// Seconds past what a Duration holds wait the longest Duration, not a negative one
		// (which retried at once); the sender then caps it at MaxRetryAfter.
		{"99999999999", time.Duration(math.MaxInt64/int64(time.Second)) * time.Second, true},
		{"99999999999999999999", 0, false},
	} {
		got, ok := retryAfter(tc.header, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 200000) // longer than the reader's buffer
	r := bufio.NewReaderSize(strings.NewReader("event: put\r\ndata: "+long+"\n\n: ping\n"), 64<<10)
	for _, want := range []string{"event: put", "data: " + long, "", ": ping"} {
		line, err := readLine(r)
		if err != nil || string(line) != want {
			t.Fatalf("readLine = %.20q (%d bytes), %v; want %.20q", line, len(line), err, want)
		}
	}
	if _, err := readLine(r); err == nil {
		t.Error("want EOF")
	}
}

func TestUUIDv7(t *testing.T) {
	pattern := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	ms := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	seen := map[string]bool{}
	for range 10000 {
		id := newUUIDv7(ms)
		if !pattern.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated UUIDv7 %q", id)
		}
		seen[id] = true
		// The first 48 bits are the timestamp.
		if got := id[0:8] + id[9:13]; got != "018f34069e00" { // 1714564800000 ms
			t.Fatalf("timestamp bits %s in %s", got, id)
		}
	}
}

// TestIDSet: the exposure dedup set finds every id inserted, through its growth, and no other.
func TestIDSet(t *testing.T) {
	s := newIDSet(minIDSetSlots)
	r := rand.New(rand.NewPCG(1, 2))
	var ids []uint64
	for range 5000 {
		id := r.Uint64() | 1 // never 0
		if s.has(id) {
			continue
		}
		s = s.insert(id)
		ids = append(ids, id)
	}
	if s.n != len(ids) || 2*s.n > len(s.slots) {
		t.Fatalf("%d ids in %d slots, want %d at most half full", s.n, len(s.slots), len(ids))
	}
	for _, id := range ids {
		if !s.has(id) {
			t.Fatalf("inserted id %x not found", id)
		}
	}
	for range 5000 {
		if id := r.Uint64() &^ 1; id != 0 && s.has(id) { // even: never inserted
			t.Fatalf("id %x found, never inserted", id)
		}
	}
}
