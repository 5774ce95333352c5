package api

import (
	"bufio"
	"time"

	"github.com/gofiber/fiber/v2"
)

// stream serves server-sent events: the ruleset at once, then every newer one, and a comment
// heartbeat between them. Each stream writes from its own goroutine and takes only the newest
// waiting ruleset, so a slow reader falls behind alone. An SDK that asks for patches (?patch=1)
// gets, for a new version that directly follows the one it was sent, only the flags and
// segments that changed.
func (a *API) stream(c *fiber.Ctx) error {
	key := keyOf(c)
	patches := c.Query("patch") == "1" && !a.cfg.NoPatches
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	sub := a.store.Subscribe(key.Entry.EnvID)
	first := a.store.Get(key.Entry.EnvID)
	if first == nil {
		first = key.Entry
	}
	heartbeat := a.cfg.Heartbeat
	m := a.metrics
	store := a.store
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		m.streams.Inc()
		defer m.streams.Dec()
		defer store.Unsubscribe(sub)
		sent := first.Version
		if writeEvent(w, putPrefix, first.JSON) != nil {
			return
		}
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-sub.Done():
				return
			case <-sub.Wake():
				if e := sub.Take(); e != nil && e.Version > sent {
					prefix, data, count := putPrefix, e.JSON, m.puts
					if patches && e.Patch != nil && e.PatchBase == sent {
						prefix, data, count = patchPrefix, e.Patch, m.patches
					}
					if writeEvent(w, prefix, data) != nil {
						return
					}
					m.delivery.Observe(time.Since(e.ReceivedAt).Seconds())
					count.Inc()
					sent = e.Version
				}
			case <-tick.C:
				if _, err := w.WriteString(": ping\n\n"); err != nil {
					return
				}
				if w.Flush() != nil {
					return
				}
			}
		}
	})
	return nil
}

var (
	putPrefix   = []byte("event: put\ndata: ")
	patchPrefix = []byte("event: patch\ndata: ")
	eventSuffix = []byte("\n\n")
)

// writeEvent writes one event with its JSON on a single data line (compact JSON has no raw
// newlines), then flushes.
func writeEvent(w *bufio.Writer, prefix, data []byte) error {
	if _, err := w.Write(prefix); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if _, err := w.Write(eventSuffix); err != nil {
		return err
	}
	return w.Flush()
}
