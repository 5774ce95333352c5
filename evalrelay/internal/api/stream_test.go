package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
	"github.com/switchyard-io/switchyard/platform/httpapi"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// TestStreamOfAKeyRevokedWhileConnecting: a key revoked (or its environment deleted) between
// the stream's authentication and its subscription gets no ruleset at all — not the one that
// revoked it, nor the deleted environment's — and its stream ends at once.
func TestStreamOfAKeyRevokedWhileConnecting(t *testing.T) {
	server, client := relaytest.Keys("env1")
	for name, change := range map[string]func(*rulesets.Store) error{
		"revoked": func(s *rulesets.Store) error {
			rotated := relaytest.Ruleset("env1", 2, false)
			rotated.SDKKeys = []ruleset.SDKKey{{Hash: relaytest.Hash(client), Kind: ruleset.KeyClient}}
			_, err := s.Apply("env1", relaytest.JSON(rotated))
			return err
		},
		"environment deleted": func(s *rulesets.Store) error {
			_, err := s.Apply("env1", nil)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			store := rulesets.New("")
			if _, err := store.Apply("env1", relaytest.JSON(relaytest.Ruleset("env1", 1, true))); err != nil {
				t.Fatal(err)
			}
			web := httpapi.New(httpapi.Options{Service: "evalrelay", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			Mount(web, Config{Heartbeat: 15 * time.Second}, store, nil)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- (&httpapi.Server{App: web, Listener: ln, Addr: ln.Addr().String(), ShutdownTimeout: time.Second}).Run(ctx)
			}()
			t.Cleanup(func() { store.EndAll(); cancel(); <-done })
			beforeSubscribe = func() {
				if err := change(store); err != nil {
					t.Error(err)
				}
			}
			t.Cleanup(func() { beforeSubscribe = nil })

			req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/sdk/v1/stream", nil)
			req.Header.Set("Authorization", server)
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			start := time.Now()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("the stream did not end cleanly: %v", err)
			}
			if strings.Contains(string(body), "event: put") {
				t.Fatalf("a revoked key's stream was sent a ruleset: %.120s", body)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("the stream did not end at once")
			}
		})
	}
}
