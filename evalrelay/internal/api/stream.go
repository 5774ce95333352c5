package api

import (
	"bufio"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
)

// stream serves server-sent events: the ruleset at once, then every newer one, and a comment
// heartbeat between them. Each stream writes from its own goroutine and takes only the newest
// waiting ruleset, so a slow reader falls behind alone.
func (a *API) stream(c *fiber.Ctx) error {
	key := keyOf(c)
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
	streams, delivery := a.metrics.streams, a.metrics.delivery
	store := a.store
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		streams.Inc()
		defer streams.Dec()
		defer store.Unsubscribe(sub)
		sent := first.Version
		if writePut(w, first) != nil {
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
					if writePut(w, e) != nil {
						return
					}
					delivery.Observe(time.Since(e.ReceivedAt).Seconds())
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
	putPrefix = []byte("event: put\ndata: ")
	putSuffix = []byte("\n\n")
)

// writePut writes one put event: the ruleset JSON on a single data line (JSON has no raw
// newlines), then flushes.
func writePut(w *bufio.Writer, e *rulesets.Entry) error {
	if _, err := w.Write(putPrefix); err != nil {
		return err
	}
	if _, err := w.Write(e.JSON); err != nil {
		return err
	}
	if _, err := w.Write(putSuffix); err != nil {
		return err
	}
	return w.Flush()
}
