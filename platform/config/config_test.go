package config

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Addr    string
	Timeout time.Duration
	Workers int
}

func (s *sample) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Addr, "http-addr", ":8080", "listen address")
	fs.DurationVar(&s.Timeout, "shutdown-timeout", 5*time.Second, "drain deadline")
	fs.IntVar(&s.Workers, "workers", 2, "workers")
}

func (s *sample) Validate() error {
	if s.Workers < 1 {
		return Invalid("workers", "must be at least 1, got %d", s.Workers)
	}
	return nil
}

func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want sample
	}{
		{"defaults", nil, nil, sample{":8080", 5 * time.Second, 2}},
		{"env overrides default", map[string]string{"SWITCHYARD_HTTP_ADDR": ":9999", "SWITCHYARD_WORKERS": "7"}, nil, sample{":9999", 5 * time.Second, 7}},
		{"flag overrides env", map[string]string{"SWITCHYARD_HTTP_ADDR": ":9999"}, []string{"-http-addr", ":7777", "-shutdown-timeout", "1s"}, sample{":7777", time.Second, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var got sample
			if err := Load("svc", &got, tc.args); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLoadValidationNamesField(t *testing.T) {
	t.Setenv("SWITCHYARD_WORKERS", "0")
	var s sample
	err := Load("svc", &s, nil)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Flag != "workers" {
		t.Fatalf("want a FieldError for workers, got %v", err)
	}
	if !strings.Contains(err.Error(), "SWITCHYARD_WORKERS") {
		t.Fatalf("error should name the env var: %v", err)
	}
}

func TestLoadBadValue(t *testing.T) {
	t.Setenv("SWITCHYARD_SHUTDOWN_TIMEOUT", "soon")
	var s sample
	if err := Load("svc", &s, nil); err == nil || !strings.Contains(err.Error(), "shutdown") {
		t.Fatalf("want an error naming shutdown-timeout, got %v", err)
	}
}
