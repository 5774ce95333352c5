package switchyard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Version is this SDK's version, sent in the User-Agent header and in events.
const Version = "0.1.0"

// Defaults of Config.
const (
	DefaultRelayURL      = "http://localhost:8081"
	DefaultEventsURL     = "http://localhost:8082"
	DefaultInitTimeout   = 5 * time.Second
	DefaultCloseTimeout  = 10 * time.Second
	DefaultFlushInterval = 5 * time.Second
	DefaultCapacity      = 10000
	DefaultBatchSize     = 500
	DefaultDedupWindow   = time.Hour
)

// Config configures a Client. The zero value (plus an SDKKey) streams from a relay on
// localhost:8081 and sends events to a collector on localhost:8082.
type Config struct {
	// SDKKey authenticates with the relay and the events collector (server-side key).
	SDKKey string
	// RelayURL is the base URL of an evaluation relay. Default DefaultRelayURL.
	RelayURL string
	// EventsURL is the base URL of the events collector (events are POSTed to
	// EventsURL + "/v1/events"). Default DefaultEventsURL, except with Offline and TestData
	// sources, where events are only sent when EventsURL is set explicitly.
	EventsURL string
	// DataSource says where rulesets come from: Streaming (the default), Polling, Offline or a
	// *TestData.
	DataSource DataSource
	// InitTimeout bounds how long New waits for the first ruleset. Default DefaultInitTimeout.
	InitTimeout time.Duration
	// StartNonBlocking makes New return at once; evaluations serve fallback values (ERROR,
	// PROVIDER_NOT_READY) until the first ruleset arrives. See WaitForInitialization.
	StartNonBlocking bool
	// CloseTimeout bounds how long Close waits for the final event flush and then for a change
	// listener still running. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Events configures exposure, summary and track events.
	Events EventsConfig
	// HTTPClient is used for every request. It must not set Timeout (streams are long-lived);
	// the SDK bounds each request itself. Default: a client with dial, TLS and header timeouts.
	HTTPClient *http.Client
	// Logger receives the SDK's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
}

// EventsConfig configures the event pipeline: exposures, per-interval evaluation summaries, and
// Track calls, queued in a bounded in-memory buffer that never blocks the caller.
type EventsConfig struct {
	// Disabled turns every event off.
	Disabled bool
	// Capacity is the maximum number of queued events; when full, the oldest is dropped (and
	// counted in EventStats.Dropped). Default DefaultCapacity.
	Capacity int
	// BatchSize triggers a flush when that many events are queued, and caps one request (which
	// is also cut at 2 MiB of JSON, under the collector's body limit). Default DefaultBatchSize.
	BatchSize int
	// FlushInterval is the time between flushes, and the window of summary events. Default
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// DedupWindow: an exposure of the same context x flag x variation is sent at most once per
	// window (and again after one to two windows, as the dedup table rotates at flush time).
	// Default DefaultDedupWindow.
	DedupWindow time.Duration
	// MaxAttempts is how many times a batch is tried before it is dropped. Default 5.
	MaxAttempts int
	// InitialBackoff and MaxBackoff bound the jittered exponential backoff between attempts.
	// Defaults 500 ms and 30 s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the wait a 429 or 503 response's Retry-After asks for. Default 60 s.
	MaxRetryAfter time.Duration
	// DisableGzip sends uncompressed bodies.
	DisableGzip bool
	// DisableSummaries stops the per-interval evaluation summary events.
	DisableSummaries bool
}

// ErrInvalidConfig wraps every configuration error returned by New.
var ErrInvalidConfig = errors.New("switchyard: invalid config")

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// withDefaults returns the config with every unset field defaulted.
func (c Config) withDefaults() Config {
	_, offline := c.DataSource.(Offline)
	_, test := c.DataSource.(*TestData)
	if c.DataSource == nil {
		c.DataSource = Streaming{}
	}
	if c.RelayURL == "" {
		c.RelayURL = DefaultRelayURL
	}
	if c.EventsURL == "" && !offline && !test {
		c.EventsURL = DefaultEventsURL
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	e := &c.Events
	if e.Capacity == 0 {
		e.Capacity = DefaultCapacity
	}
	if e.BatchSize == 0 {
		e.BatchSize = DefaultBatchSize
	}
	if e.FlushInterval == 0 {
		e.FlushInterval = DefaultFlushInterval
	}
	if e.DedupWindow == 0 {
		e.DedupWindow = DefaultDedupWindow
	}
	if e.MaxAttempts == 0 {
		e.MaxAttempts = 5
	}
	if e.InitialBackoff == 0 {
		e.InitialBackoff = 500 * time.Millisecond
	}
	if e.MaxBackoff == 0 {
		e.MaxBackoff = 30 * time.Second
	}
	if e.MaxRetryAfter == 0 {
		e.MaxRetryAfter = time.Minute
	}
	return c
}

// Validate reports the first invalid field of a defaulted config.
func (c Config) Validate() error {
	needsKey := true
	switch ds := c.DataSource.(type) {
	case Offline:
		if ds.Path == "" && ds.Data == nil {
			return invalid("Offline.Path", "Offline needs Path or Data")
		}
		needsKey = c.EventsURL != "" && !c.Events.Disabled
	case *TestData:
		needsKey = c.EventsURL != "" && !c.Events.Disabled
	case Streaming:
		if err := ds.validate(); err != nil {
			return err
		}
	case Polling:
		if err := ds.validate(); err != nil {
			return err
		}
	case nil:
		return invalid("DataSource", "required")
	}
	if needsKey && c.SDKKey == "" {
		return invalid("SDKKey", "required")
	}
	for field, u := range map[string]string{"RelayURL": c.RelayURL, "EventsURL": c.EventsURL} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return invalid(field, "%q is not an http(s) URL", u)
		}
	}
	switch {
	case c.InitTimeout < 0:
		return invalid("InitTimeout", "must not be negative")
	case c.CloseTimeout < 0:
		return invalid("CloseTimeout", "must not be negative")
	case c.HTTPClient.Timeout != 0:
		return invalid("HTTPClient", "must not set Timeout (it would cut streams); the SDK bounds requests itself")
	case c.Events.Capacity < 1:
		return invalid("Events.Capacity", "must be positive")
	case c.Events.BatchSize < 1:
		return invalid("Events.BatchSize", "must be positive")
	case c.Events.FlushInterval < 0:
		return invalid("Events.FlushInterval", "must be positive")
	case c.Events.DedupWindow < 0:
		return invalid("Events.DedupWindow", "must not be negative")
	case c.Events.MaxAttempts < 1:
		return invalid("Events.MaxAttempts", "must be positive")
	case c.Events.InitialBackoff < 0 || c.Events.MaxBackoff < c.Events.InitialBackoff:
		return invalid("Events.MaxBackoff", "must be at least InitialBackoff")
	}
	return nil
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 15 * time.Second
	t.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: t}
}

// Environment variables read by ConfigFromEnv.
const (
	EnvSDKKey    = "SWITCHYARD_SDK_KEY"
	EnvRelayURL  = "SWITCHYARD_RELAY_URL"
	EnvEventsURL = "SWITCHYARD_EVENTS_URL"
)

// ConfigFromEnv returns a Config with SDKKey, RelayURL and EventsURL taken from the
// SWITCHYARD_SDK_KEY, SWITCHYARD_RELAY_URL and SWITCHYARD_EVENTS_URL environment variables (unset
// variables leave the defaults). Set the other fields in code.
func ConfigFromEnv() Config {
	return Config{SDKKey: os.Getenv(EnvSDKKey), RelayURL: os.Getenv(EnvRelayURL), EventsURL: os.Getenv(EnvEventsURL)}
}
