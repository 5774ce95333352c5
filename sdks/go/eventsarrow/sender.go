package eventsarrow

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Result is the collector's answer to an accepted batch.
type Result struct {
	Accepted int            `json:"accepted"`
	Rejected map[string]int `json:"rejected"`
	Clamped  int            `json:"clamped"`
}

// Sender POSTs event batches to a collector as Arrow IPC streams. Retrying a batch is safe:
// the pipeline deduplicates by event_id.
type Sender struct {
	// EventsURL is the collector's events endpoint, e.g. http://127.0.0.1:8082/v1/events.
	EventsURL string
	// SDKKey authenticates the sender (a server key).
	SDKKey string
	// Client is the HTTP client (http.DefaultClient when nil).
	Client *http.Client
	// Gzip compresses the stream.
	Gzip bool
	// BatchRows is the largest record batch inside one stream (default 10,000).
	BatchRows int
	// MaxAttempts bounds tries per batch (default 5); waits follow Retry-After, else back off.
	MaxAttempts int
}

// ErrRejectedBatch is returned when the collector refuses a batch for good (4xx other than 429).
var ErrRejectedBatch = errors.New("eventsarrow: collector rejected the batch")

// Send encodes events and sends them, retrying on 429/503 and network errors.
func (s *Sender) Send(ctx context.Context, events []Event) (Result, error) {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if s.Gzip {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	rows := s.BatchRows
	if rows <= 0 {
		rows = 10000
	}
	if err := WriteStream(w, events, rows); err != nil {
		return Result{}, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return Result{}, err
		}
	}
	body := buf.Bytes()
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	attempts := s.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff := 200 * time.Millisecond
	var lastErr error
	for attempt := 1; attempt <= attempts; attempt++ {
		res, wait, err := s.post(ctx, client, body)
		if err == nil {
			return res, nil
		}
		if errors.Is(err, ErrRejectedBatch) {
			return Result{}, err
		}
		lastErr = err
		if wait == 0 {
			wait = backoff
			backoff = min(backoff*2, 10*time.Second)
		}
		if attempt == attempts {
			break
		}
		select {
		case <-ctx.Done():
			return Result{}, errors.Join(ctx.Err(), lastErr)
		case <-time.After(wait):
		}
	}
	return Result{}, lastErr
}

func (s *Sender) post(ctx context.Context, client *http.Client, body []byte) (Result, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.EventsURL, bytes.NewReader(body))
	if err != nil {
		return Result{}, 0, fmt.Errorf("%w: %v", ErrRejectedBatch, err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Authorization", s.SDKKey)
	if s.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusAccepted:
		var res Result
		if err := json.Unmarshal(data, &res); err != nil {
			return Result{}, 0, fmt.Errorf("eventsarrow: decode response: %w", err)
		}
		return res, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		var wait time.Duration
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return Result{}, wait, fmt.Errorf("eventsarrow: collector answered %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	default:
		return Result{}, 0, fmt.Errorf("%w: %d: %s", ErrRejectedBatch, resp.StatusCode, bytes.TrimSpace(data))
	}
}
