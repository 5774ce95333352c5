package api

import (
	"net"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
)

// stream serves server-sent events: the ruleset at once, then every newer one, and a comment
// heartbeat between them. Each stream writes from its own goroutine and takes only the newest
// waiting ruleset, so a slow reader falls behind alone. An SDK that asks for patches (?patch=1)
// gets, for a new version that directly follows the one it was sent, only the flags and
// segments that changed. A stream ends when its key stops being valid — revoked or rotated out
// by a new ruleset (checked before sending it), or expired (checked at each heartbeat) — so the
// SDK's reconnection gets 401 like any new request.
func (a *API) stream(c *fiber.Ctx) error {
	key := keyOf(c)
	patches := c.Query("patch") == "1" && !a.cfg.NoPatches
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	// The stream writes on the connection itself: fasthttp's body stream writer would copy every
	// event through a pipe to the connection's goroutine, a second goroutine wake-up per stream
	// per change. The headers are the ones the handlers and middleware set; the body is chunked,
	// or for an HTTP/1.0 client (a proxy's default upstream protocol) delimited by closing.
	chunked := c.Request().Header.IsHTTP11()
	if chunked {
		c.Set(fiber.HeaderConnection, "keep-alive")
		c.Response().Header.SetContentLength(-1)
	} else {
		c.Response().Header.SetContentLength(-2)              // Connection: close…
		c.Response().Header.Del(fiber.HeaderTransferEncoding) // …without "identity", which RFC 9112 dropped
	}
	head := append([]byte(nil), c.Response().Header.Header()...)
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(func(conn net.Conn) {
		// fasthttp holds the request's context and the connection's read buffer until this
		// returns, and a stream never reads the request again: it runs on a goroutine of its
		// own and this returns at once, so a stream keeps only what it uses. fasthttp leaves
		// the connection open (KeepHijackedConns, set by Mount); the stream closes it.
		conn = unwrapConn(conn)
		go func() {
			defer conn.Close()
			a.streamOn(conn, key, head, chunked, patches)
		}()
	})
	return nil
}

// streamOn serves one stream on its connection until it ends. It uses nothing of the request's
// context, which fasthttp has taken back.
func (a *API) streamOn(conn net.Conn, key rulesets.Key, head []byte, chunked, patches bool) {
	m, store, env := a.metrics, a.store, key.Entry
	// Subscribed here, where the stream starts, so a connection fasthttp fails before handing it
	// over leaves no subscription behind.
	if beforeSubscribe != nil {
		beforeSubscribe()
	}
	sub := store.Subscribe(env.EnvID)
	defer store.Unsubscribe(sub)
	first := store.Get(env.EnvID)
	if first == nil {
		first = env
	}
	m.streams.Inc()
	defer m.streams.Dec()
	w := &eventWriter{conn: conn, chunked: chunked, head: head}
	if !store.Valid(key) {
		// Revoked, or the environment deleted, since the key was authenticated (before the
		// subscription, so no end or wake-up came): end at once, sending nothing.
		_ = w.end()
		return
	}
	sent := first.Version
	if w.event(putPrefix, first.JSON) != nil {
		return
	}
	tick := time.NewTicker(a.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-sub.Done():
			_ = w.end()
			return
		case <-sub.Wake():
			if !store.Valid(key) {
				_ = w.end() // revoked or expired: the SDK's reconnection gets 401
				return
			}
			if e := sub.Take(); e != nil && e.Version > sent {
				prefix, data, count := putPrefix, e.JSON, m.puts
				if patches && e.Patch != nil && e.PatchBase == sent {
					prefix, data, count = patchPrefix, e.Patch, m.patches
				}
				if w.event(prefix, data) != nil {
					return
				}
				m.delivery.Observe(time.Since(e.ReceivedAt).Seconds())
				count.Inc()
				sent = e.Version
			}
		case <-tick.C:
			if !store.Valid(key) {
				_ = w.end()
				return
			}
			if w.event(nil, pingComment) != nil {
				return
			}
		}
	}
}

// beforeSubscribe, when set (by tests), runs when a stream starts, before it subscribes.
var beforeSubscribe func()

// streamWriteTimeout bounds one write to a stream: a client that has not read for between half
// of it and all of it (its socket buffers full) is disconnected. Other streams never wait for it.
const streamWriteTimeout = 30 * time.Second

// eventWriter writes server-sent events, each with one vectored write (the ruleset's bytes are
// shared by every stream, never copied): as HTTP/1.1 chunks, or as they are.
type eventWriter struct {
	conn    net.Conn
	chunked bool
	head    []byte // the response head, written with the first event
	pre     []byte // the chunk size line and the event's prefix, reused
	// deadline is the connection's write deadline, moved only once less than half of
	// streamWriteTimeout is left: setting it takes the runtime's timer lock, a tenth of a
	// change's fan-out when it was set for every write.
	deadline time.Time
}

// unwrapConn returns the TCP connection under fasthttp's hijacked wrapper, which hides its
// vectored writes.
func unwrapConn(conn net.Conn) net.Conn {
	if c, ok := conn.(interface{ UnsafeConn() net.Conn }); ok {
		return c.UnsafeConn()
	}
	return conn
}

var (
	blankLine = []byte("\n\n")     // ends an event
	chunkEnd  = []byte("\n\n\r\n") // the blank line and the end of the chunk
	lastChunk = []byte("0\r\n\r\n")
)

// event writes one event with its JSON on a single data line (compact JSON has no raw
// newlines). A nil prefix writes data as is (a comment, which ends itself).
func (w *eventWriter) event(prefix, data []byte) error {
	end := blankLine
	if prefix == nil {
		end = nil
	}
	pre := append(w.pre[:0], w.head...)
	w.head = nil
	if w.chunked {
		pre = strconv.AppendInt(pre, int64(len(prefix)+len(data)+len(end)), 16)
		pre = append(pre, "\r\n"...)
		if end != nil {
			end = chunkEnd
		} else {
			end = chunkEnd[len(blankLine):]
		}
	}
	pre = append(pre, prefix...)
	w.pre = pre
	return w.write(net.Buffers{pre, data, end})
}

// end ends a chunked body, so the client sees the stream end cleanly (closing the connection
// ends the other kind).
func (w *eventWriter) end() error {
	var b net.Buffers
	if w.head != nil { // ended before its first event: the response head still goes out
		b, w.head = append(b, w.head), nil
	}
	if w.chunked {
		b = append(b, lastChunk)
	}
	if len(b) == 0 {
		return nil
	}
	return w.write(b)
}

func (w *eventWriter) write(b net.Buffers) error {
	if now := time.Now(); w.deadline.Sub(now) < streamWriteTimeout/2 {
		w.deadline = now.Add(streamWriteTimeout)
		if err := w.conn.SetWriteDeadline(w.deadline); err != nil {
			return err
		}
	}
	_, err := b.WriteTo(w.conn)
	return err
}

var (
	putPrefix   = []byte("event: put\ndata: ")
	patchPrefix = []byte("event: patch\ndata: ")
	pingComment = []byte(": ping\n\n")
)
