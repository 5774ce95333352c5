package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad configuration fails at start with exit status 2 and one line naming the flag.
func TestRunRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"relative upstream URL", []string{"serve", "-stats-url", "127.0.0.1:8083"}, "dashboards: config: invalid -stats-url (SWITCHYARD_STATS_URL)"},
		{"unknown flag", []string{"-no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{"unknown command", []string{"migrate"}, `dashboards: unknown command "migrate"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q does not contain %q", stderr.String(), tc.want)
			}
		})
	}
}
