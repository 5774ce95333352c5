package server

import (
	"flag"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/platform/config"
	"github.com/switchyard-io/switchyard/platform/logging"
)

// DefaultAddr is the dashboards server's listen address.
const DefaultAddr = ":8085"

// Config configures `dashboards serve`. Every field has a flag and a SWITCHYARD_* variable
// (-flagsvc-url is SWITCHYARD_FLAGSVC_URL, the variable deploy/local/services.sh exports).
type Config struct {
	HTTPAddr string
	// Upstreams. FlagsvcURL is required; the others may be empty, and then their routes
	// answer 503 saying which flag to set.
	FlagsvcURL string
	StatsURL   string
	JobsURL    string
	IngestURL  string
	// IngestQueryToken is the bearer token of ingest's usage API (its -query-token). Browsers
	// never see it: the server checks the caller's API token with the flag service first.
	IngestQueryToken string
	// ProxyTimeout bounds the wait for an upstream's response headers (bodies may stream longer).
	ProxyTimeout    time.Duration
	LogLevel        string
	ShutdownTimeout time.Duration
	AccessLog       bool
}

// RegisterFlags implements config.Config.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", DefaultAddr, "listen address")
	fs.StringVar(&c.FlagsvcURL, "flagsvc-url", "http://127.0.0.1:8080", "flag service base URL (proxied at /api/v1/*)")
	fs.StringVar(&c.StatsURL, "stats-url", "http://127.0.0.1:8083", "stats service base URL (proxied at /stats/v1/*); empty disables")
	fs.StringVar(&c.JobsURL, "jobs-url", "http://127.0.0.1:8084", "jobs service base URL (proxied at /jobs/v1/*); empty disables")
	fs.StringVar(&c.IngestURL, "ingest-url", "http://127.0.0.1:8082", "ingest base URL; its usage API is proxied at /usage/*; empty disables")
	fs.StringVar(&c.IngestQueryToken, "ingest-query-token", "", "bearer token of ingest's usage API (ingest -query-token); empty disables /usage/*")
	fs.DurationVar(&c.ProxyTimeout, "proxy-timeout", 30*time.Second, "longest wait for an upstream's response headers")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	fs.BoolVar(&c.AccessLog, "access-log", false, "log every request (debug level)")
}

// Validate implements config.Config.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.HTTPAddr) == "" {
		return config.Invalid("http-addr", "must not be empty")
	}
	if c.FlagsvcURL == "" {
		return config.Invalid("flagsvc-url", "must not be empty: the web app cannot work without the flag service")
	}
	for _, u := range []struct{ flag, value string }{
		{"flagsvc-url", c.FlagsvcURL}, {"stats-url", c.StatsURL}, {"jobs-url", c.JobsURL}, {"ingest-url", c.IngestURL},
	} {
		if u.value == "" {
			continue
		}
		parsed, err := url.Parse(u.value)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return config.Invalid(u.flag, "must be an absolute http(s) URL such as http://127.0.0.1:8080, got %q", u.value)
		}
	}
	if c.ProxyTimeout <= 0 {
		return config.Invalid("proxy-timeout", "must be positive, got %s", c.ProxyTimeout)
	}
	if !logging.ValidLevel(c.LogLevel) {
		return config.Invalid("log-level", "unknown level %q (debug, info, warn, error)", c.LogLevel)
	}
	if c.ShutdownTimeout <= 0 {
		return config.Invalid("shutdown-timeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	return nil
}
