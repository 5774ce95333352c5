// Package logging builds the structured JSON logger every service uses (log/slog).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger writing to w at the given level (debug, info, warn, error), with a
// "service" attribute on every record.
func New(w io.Writer, service, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "", "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("unknown log level %q (debug, info, warn, error)", level)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(h).With("service", service), nil
}

// ValidLevel reports whether level is accepted by New.
func ValidLevel(level string) bool {
	_, err := New(io.Discard, "", level)
	return err == nil
}
