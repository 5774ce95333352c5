package switchyard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
)

// Streaming keeps a server-sent-events connection to the relay (GET /sdk/v1/stream): the full
// ruleset arrives on connect, then each change as a patch of the flags and segments it touched
// (or the full ruleset again when the relay has no patch), and ": ping" heartbeats every 15 s keep
// the connection provably alive. A connection silent for ReadTimeout is dead; reconnections use a
// jittered exponential backoff. This is the default data source.
type Streaming struct {
	// ReadTimeout: a connection that delivers nothing (no event, no heartbeat) for this long is
	// closed and reopened. Default 35 s: two missed 15 s heartbeats plus slack.
	ReadTimeout time.Duration
	// InitialBackoff and MaxBackoff bound the wait between connection attempts. Defaults 1 s and
	// 30 s.
	InitialBackoff, MaxBackoff time.Duration
	// FallbackToPollingAfter: after this many consecutive connection attempts without a ruleset,
	// the SDK polls GET /sdk/v1/ruleset before each further attempt, so it stays current through
	// proxies that break streaming. 0 (the default) never polls.
	FallbackToPollingAfter int
}

func (s Streaming) validate() error {
	switch {
	case s.ReadTimeout < 0:
		return invalid("Streaming.ReadTimeout", "must be positive")
	case s.InitialBackoff < 0 || s.MaxBackoff < 0:
		return invalid("Streaming.InitialBackoff", "must be positive")
	case s.MaxBackoff != 0 && s.MaxBackoff < s.InitialBackoff:
		return invalid("Streaming.MaxBackoff", "must be at least InitialBackoff")
	case s.FallbackToPollingAfter < 0:
		return invalid("Streaming.FallbackToPollingAfter", "must not be negative")
	}
	return nil
}

func (s Streaming) withDefaults() Streaming {
	if s.ReadTimeout == 0 {
		s.ReadTimeout = 35 * time.Second
	}
	if s.InitialBackoff == 0 {
		s.InitialBackoff = time.Second
	}
	if s.MaxBackoff == 0 {
		s.MaxBackoff = max(30*time.Second, s.InitialBackoff)
	}
	return s
}

// errReadTimeout: the stream was silent for longer than ReadTimeout.
var errReadTimeout = errors.New("stream read timeout: no data or heartbeat")

// errStreamClosed: the relay closed the stream.
var errStreamClosed = errors.New("stream closed by the relay")

// errUnusablePatch: the relay sent a patch the SDK cannot apply (from a version it does not
// have); only the put a new connection starts with brings it back in step.
var errUnusablePatch = errors.New("relay sent a patch the SDK cannot apply")

func (s Streaming) run(ctx context.Context, env *sourceEnv) error {
	s = s.withDefaults()
	b := backoff{initial: s.InitialBackoff, max: s.MaxBackoff}
	failures := 0
	var fallback poller
	var lastImmediate time.Time
	for {
		gotPut, err := s.connect(ctx, env)
		if ctx.Err() != nil {
			return nil
		}
		var se *statusError
		if errors.As(err, &se) && permanent(se.code) {
			return fmt.Errorf("%w: %v", ErrUnauthorized, err)
		}
		if gotPut {
			b.reset()
			failures = 0
		} else {
			failures++
		}
		env.log.Warn("relay stream interrupted; reconnecting", "error", err)
		env.client.interrupted(err)
		// Out of step after a healthy connection: reconnect for the put at once rather than
		// serve the old ruleset for a backoff, but at most once per MaxBackoff, so a relay that
		// keeps sending unusable patches cannot keep the SDK reconnecting in a loop.
		if gotPut && errors.Is(err, errUnusablePatch) && time.Since(lastImmediate) > s.MaxBackoff {
			lastImmediate = time.Now()
			continue
		}
		if s.FallbackToPollingAfter > 0 && failures >= s.FallbackToPollingAfter {
			if err := fallback.poll(ctx, env, 10*time.Second); err != nil {
				if errors.As(err, &se) && permanent(se.code) {
					return fmt.Errorf("%w: %v", ErrUnauthorized, err)
				}
				env.log.Warn("fallback poll failed", "error", err)
			}
		}
		if !sleep(ctx, b.next()) {
			return nil
		}
	}
}

// connect runs one stream connection until it fails; gotPut says whether it delivered a ruleset.
func (s Streaming) connect(ctx context.Context, env *sourceEnv) (gotPut bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := env.request(ctx, streamPath+"?patch=1")
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	var timedOut atomic.Bool
	watchdog := time.AfterFunc(s.ReadTimeout, func() { timedOut.Store(true); cancel() })
	defer watchdog.Stop()
	resp, err := env.cfg.HTTPClient.Do(req)
	if err != nil {
		if timedOut.Load() {
			return false, errReadTimeout
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return false, &statusError{code: resp.StatusCode, url: req.URL.String()}
	}
	stale := resp.Header.Get(staleHeader) == "true"
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var (
		event   string
		data    []byte
		hasData bool
	)
	for {
		line, err := readLine(r)
		if err != nil {
			if timedOut.Load() {
				return gotPut, errReadTimeout
			}
			if errors.Is(err, io.EOF) {
				return gotPut, errStreamClosed
			}
			return gotPut, err
		}
		watchdog.Reset(s.ReadTimeout)
		switch {
		case len(line) == 0: // end of an event
			switch {
			case event == "put" && hasData:
				rs, err := evaluation.CompileJSON(data)
				if err != nil {
					env.log.Error("relay sent an unusable ruleset; keeping the current one", "error", err)
					env.client.interrupted(err)
				} else {
					env.client.update(rs, stale)
					gotPut = true
				}
			case event == "patch" && hasData:
				if err := applyPatch(env, data, stale); err != nil {
					// Only a put can bring this connection back in step: reconnect for one.
					return gotPut, err
				}
			}
			event, data, hasData = "", data[:0], false
		case line[0] == ':': // comment: the heartbeat
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				event = string(value)
			case "data":
				if hasData {
					data = append(data, '\n')
				}
				data = append(data, value...)
				hasData = true
			}
		}
	}
}

// applyPatch applies a patch event (the flags and segments changed since the version the relay
// last sent on this connection) to the client's ruleset. A patch the client cannot apply is an
// error, unless the client already has a ruleset at least as new (a lagging relay).
func applyPatch(env *sourceEnv, data []byte, stale bool) error {
	cur := env.client.ruleset.Load()
	rs, err := cur.PatchJSON(data)
	if err != nil {
		var p struct {
			Version int64 `json:"version"`
		}
		if errors.Is(err, evaluation.ErrPatchBase) && cur != nil && json.Unmarshal(data, &p) == nil && p.Version <= cur.Version() {
			return nil
		}
		return fmt.Errorf("%w: %w", errUnusablePatch, err)
	}
	env.client.update(rs, stale)
	return nil
}

// readLine reads one line without its line ending (LF or CRLF), of any length up to
// maxRulesetBytes (a whole ruleset is one data line).
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		buf := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = r.ReadSlice('\n')
			buf = append(buf, line...)
			if len(buf) > maxRulesetBytes {
				return nil, errors.New("stream line longer than 256 MiB")
			}
		}
		line = buf
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return line, nil
}
