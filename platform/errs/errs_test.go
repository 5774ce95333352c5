package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindsMatchThroughWrapping(t *testing.T) {
	err := fmt.Errorf("saving flag: %w", Conflict("version", "flag was changed since version %d", 3))
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		t.Fatalf("errors.Is by kind broken for %v", err)
	}
	if KindOf(err) != KindConflict || KindOf(errors.New("x")) != KindInternal {
		t.Fatal("KindOf")
	}
	var e *Error
	if !errors.As(err, &e) || e.Field != "version" || e.Message != "flag was changed since version 3" {
		t.Fatalf("As: %+v", e)
	}
	cause := errors.New("connection refused")
	if u := Unavailable(cause, "kafka is down"); !errors.Is(u, cause) {
		t.Fatal("cause not unwrapped")
	}
}
