package switchyard

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
)

// DataSource says where a client's rulesets come from: Streaming, Polling, Offline or a *TestData.
type DataSource interface {
	// run feeds rulesets to env.client until ctx ends. A returned error is permanent.
	run(ctx context.Context, env *sourceEnv) error
}

type sourceEnv struct {
	cfg    *Config
	log    *slog.Logger
	client *Client
}

// Relay endpoints (sdks/spec/PROTOCOL.md).
const (
	rulesetPath = "/sdk/v1/ruleset"
	streamPath  = "/sdk/v1/stream"
	staleHeader = "X-Switchyard-Stale"
	userAgent   = "switchyard-go/" + Version
	// maxRulesetBytes bounds what the SDK reads for one ruleset (a guard, not a limit in practice).
	maxRulesetBytes = 256 << 20
)

// statusError is an unexpected HTTP status from the relay.
type statusError struct {
	code int
	url  string
}

func (e *statusError) Error() string { return fmt.Sprintf("%s answered %d", e.url, e.code) }

// permanent reports whether an HTTP status means retrying cannot help.
func permanent(code int) bool { return code == http.StatusUnauthorized || code == http.StatusForbidden }

func (env *sourceEnv) request(ctx context.Context, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(env.cfg.RelayURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", env.cfg.SDKKey)
	req.Header.Set("User-Agent", userAgent)
	return req, nil
}

// backoff is a jittered exponential backoff: attempt n waits a random duration in
// [d/2, d) where d = min(max, initial * 2^n).
type backoff struct {
	initial, max time.Duration
	attempt      int
}

func (b *backoff) next() time.Duration {
	d := b.initial << min(b.attempt, 30)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.attempt++
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

func (b *backoff) reset() { b.attempt = 0 }

// sleep waits for d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readBody reads a response body, decompressing gzip when the server compressed it on its own.
// (Go's transport decompresses transparently when it negotiated gzip itself.)
func readBody(resp *http.Response) ([]byte, error) {
	var r io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") && !resp.Uncompressed {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		r = gz
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRulesetBytes+1))
	if err == nil && len(data) > maxRulesetBytes {
		err = errors.New("ruleset larger than 256 MiB")
	}
	return data, err
}

// --- Offline ---

// Offline serves a ruleset from a file or from bytes (bootstrap), with no network at all. Events
// are only sent if Config.EventsURL is set.
type Offline struct {
	// Path of a ruleset JSON file; used when Data is nil.
	Path string
	// Data is a ruleset JSON document.
	Data []byte
}

func (o Offline) run(ctx context.Context, env *sourceEnv) error {
	data, from := o.Data, "Offline.Data"
	if data == nil {
		var err error
		if data, err = os.ReadFile(o.Path); err != nil {
			return fmt.Errorf("switchyard: offline ruleset: %w", err)
		}
		from = o.Path
	}
	rs, err := evaluation.CompileJSON(data)
	if err != nil {
		return fmt.Errorf("switchyard: offline ruleset %s: %w", from, err)
	}
	env.client.update(rs, false)
	<-ctx.Done()
	return nil
}

// --- Polling ---

// Polling fetches the ruleset from the relay at an interval, with ETag / If-None-Match so an
// unchanged ruleset costs a 304.
type Polling struct {
	// Interval between polls. Default 30 s.
	Interval time.Duration
	// RequestTimeout bounds one request. Default 10 s.
	RequestTimeout time.Duration
}

func (p Polling) validate() error {
	if p.Interval < 0 {
		return invalid("Polling.Interval", "must be positive")
	}
	if p.RequestTimeout < 0 {
		return invalid("Polling.RequestTimeout", "must be positive")
	}
	return nil
}

func (p Polling) withDefaults() Polling {
	if p.Interval == 0 {
		p.Interval = 30 * time.Second
	}
	if p.RequestTimeout == 0 {
		p.RequestTimeout = 10 * time.Second
	}
	return p
}

func (p Polling) run(ctx context.Context, env *sourceEnv) error {
	p = p.withDefaults()
	var poller poller
	for {
		if err := poller.poll(ctx, env, p.RequestTimeout); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var se *statusError
			if errors.As(err, &se) && permanent(se.code) {
				return fmt.Errorf("%w: %v", ErrUnauthorized, err)
			}
			env.log.Warn("polling the relay failed", "error", err)
			env.client.interrupted(err)
		}
		if !sleep(ctx, p.Interval) {
			return nil
		}
	}
}

// poller remembers the ETag of the last ruleset it installed.
type poller struct{ etag string }

func (p *poller) poll(ctx context.Context, env *sourceEnv, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := env.request(ctx, rulesetPath)
	if err != nil {
		return err
	}
	if p.etag != "" {
		req.Header.Set("If-None-Match", p.etag)
	}
	resp, err := env.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	stale := resp.Header.Get(staleHeader) == "true"
	switch resp.StatusCode {
	case http.StatusNotModified:
		env.client.markCurrent(stale)
		return nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return &statusError{code: resp.StatusCode, url: req.URL.String()}
	}
	data, err := readBody(resp)
	if err != nil {
		return err
	}
	rs, err := evaluation.CompileJSON(data)
	if err != nil {
		return err
	}
	env.client.update(rs, stale)
	p.etag = resp.Header.Get("ETag")
	return nil
}

// markCurrent records that the relay confirmed the served ruleset (a 304).
func (c *Client) markCurrent(stale bool) {
	c.mu.Lock()
	before := statusKeyOf(c.status)
	c.status.Stale = stale
	if c.ruleset.Load() != nil {
		c.status.State = StateValid
		c.status.LastError = nil
	}
	changed := statusKeyOf(c.status) != before
	c.mu.Unlock()
	if changed {
		c.listeners.notify()
	}
}
