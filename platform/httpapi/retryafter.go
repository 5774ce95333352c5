package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter bounds a Retry-After read in seconds (so a huge number cannot overflow a
// Duration); callers cap the wait further.
const maxRetryAfter = 24 * time.Hour

// RetryAfter reads the Retry-After header of an answer: delay-seconds, or an HTTP date measured
// from the answer's Date header (from now without one). ok is false when the header is absent
// or unreadable; the wait is never negative (a date in the past is 0) and at most a day.
func RetryAfter(h http.Header) (wait time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	now := time.Now()
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	return min(max(at.Sub(now), 0), maxRetryAfter), true
}
