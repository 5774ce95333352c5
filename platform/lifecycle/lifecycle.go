// Package lifecycle runs a service's long-lived components together and shuts them down
// gracefully: the first component to fail, or SIGTERM/SIGINT, cancels the rest, which then
// have a deadline to drain (stop accepting, flush, commit).
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Component is a long-running part of a service. Run blocks until ctx is cancelled (then
// drains and returns nil) or the component fails.
type Component interface {
	Name() string
	Run(ctx context.Context) error
}

// Func adapts a function to a Component.
type Func struct {
	ComponentName string
	Fn            func(ctx context.Context) error
}

// Name implements Component.
func (f Func) Name() string { return f.ComponentName }

// Run implements Component.
func (f Func) Run(ctx context.Context) error { return f.Fn(ctx) }

// ErrShutdownTimeout is returned by Run when components did not stop within the deadline.
var ErrShutdownTimeout = errors.New("lifecycle: components did not stop within the shutdown deadline")

// Run runs the components until ctx is cancelled, a signal arrives, or one fails. After that
// the components get shutdownTimeout to return. It returns the first component error.
func Run(ctx context.Context, log *slog.Logger, shutdownTimeout time.Duration, components ...Component) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range components {
		g.Go(func() error {
			log.Info("component starting", "component", c.Name())
			err := c.Run(gctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("component failed", "component", c.Name(), "err", err)
				return fmt.Errorf("%s: %w", c.Name(), err)
			}
			log.Info("component stopped", "component", c.Name())
			return nil
		})
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err
	case <-gctx.Done():
	}
	log.Info("shutting down", "deadline", shutdownTimeout.String())
	select {
	case err := <-done:
		return err
	case <-time.After(shutdownTimeout):
		return ErrShutdownTimeout
	}
}
