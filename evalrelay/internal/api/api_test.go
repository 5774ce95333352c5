package api

import "testing"

func TestETagMatchesIfNoneMatch(t *testing.T) {
	const etag = `"env1-3"`
	for header, want := range map[string]bool{
		``: false, `"env1-3"`: true, `W/"env1-3"`: true, `"env1-2", "env1-3"`: true, `"env1-2",W/"env1-3"`: true,
		`*`: true, `"env1-2"`: false, `"env1-30"`: false, `env1-3`: false, `"env1-2", "x"`: false,
	} {
		if got := etagMatches(header, etag); got != want {
			t.Errorf("If-None-Match %q: %v, want %v", header, got, want)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		``: false, `gzip`: true, `gzip, deflate, br`: true, `br;q=1.0, GZIP;q=0.5`: true, `gzip;q=0`: false,
		`gzip;q=0, identity`: false, `gzip; q=0.0`: false, `identity`: false, `*`: true, `*;q=0`: false,
		`*, gzip;q=0`: false, `gzip;q=0.001, *;q=0`: true, `deflate, *`: true, `x-gzip`: true, `gzipped`: false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("Accept-Encoding %q: %v, want %v", header, got, want)
		}
	}
}
