package httpapi

import (
	"net/http"
	"testing"
	"time"
)

// TestRetryAfter: seconds or an HTTP date (from the answer's Date), never negative, at most a
// day; absent or unreadable is not ok.
func TestRetryAfter(t *testing.T) {
	date := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, header, date string
		want               time.Duration
		ok                 bool
	}{
		{"seconds", " 30 ", "", 30 * time.Second, true},
		{"zero", "0", "", 0, true},
		{"HTTP date", date.Add(90 * time.Second).Format(http.TimeFormat), date.Format(http.TimeFormat), 90 * time.Second, true},
		{"date in the past", date.Add(-time.Minute).Format(http.TimeFormat), date.Format(http.TimeFormat), 0, true},
		{"huge", "9000000000000", "", 24 * time.Hour, true},
		{"negative", "-5", "", 0, false},
		{"garbage", "soon", "", 0, false},
		{"none", "", "", 0, false},
	} {
		h := http.Header{}
		if c.header != "" {
			h.Set("Retry-After", c.header)
		}
		if c.date != "" {
			h.Set("Date", c.date)
		}
		if got, ok := RetryAfter(h); got != c.want || ok != c.ok {
			t.Errorf("%s: %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// FuzzRetryAfter: whatever servers and proxies send, the wait is never negative, at most a
// day, and 0 unless the header was read.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "30", " 7 ", "0", "-3", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "", "99999999999999999999", "9000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := RetryAfter(http.Header{"Retry-After": []string{v}})
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("wait %v for %q", d, v)
		}
		if !ok && d != 0 {
			t.Fatalf("wait %v without a valid header %q", d, v)
		}
	})
}
