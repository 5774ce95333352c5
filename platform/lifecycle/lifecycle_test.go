package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestFailingComponentStopsTheOthers(t *testing.T) {
	boom := errors.New("boom")
	drained := make(chan struct{})
	err := Run(context.Background(), quiet, 5*time.Second,
		Func{"server", func(ctx context.Context) error {
			<-ctx.Done()
			close(drained)
			return nil
		}},
		Func{"worker", func(ctx context.Context) error { return boom }},
	)
	if !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	select {
	case <-drained:
	default:
		t.Fatal("server was not cancelled and drained")
	}
}

func TestCancelledContextDrainsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() { <-started; cancel() }()
	err := Run(ctx, quiet, 5*time.Second, Func{"server", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err() // context.Canceled is a clean stop
	}})
	if err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := make(chan struct{})
	defer close(block)
	err := Run(ctx, quiet, 50*time.Millisecond, Func{"stuck", func(context.Context) error {
		<-block
		return nil
	}})
	if !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("want ErrShutdownTimeout, got %v", err)
	}
}
