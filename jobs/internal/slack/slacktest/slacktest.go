// Package slacktest is a local stand-in for the parts of Slack's Web API the jobs service uses:
// chat.postMessage (Block Kit blocks, metadata) and conversations.history (with metadata), with
// token checks, Slack's error envelope, and scripted failures (429 with Retry-After, 5xx) to
// test retries. Point slack-go at it with OptionAPIURL(server.URL) — which the jobs service's
// -slack-api-url does — in unit tests and in end-to-end tests of the real binary.
package slacktest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Message is a message the server accepted.
type Message struct {
	Channel string
	TS      string
	Text    string
	// Blocks is the raw Block Kit JSON as posted.
	Blocks json.RawMessage
	// Metadata is the raw metadata JSON as posted (empty when none).
	Metadata json.RawMessage
}

// MetadataPayload decodes the message's metadata event payload.
func (m Message) MetadataPayload() (eventType string, payload map[string]any) {
	var md struct {
		EventType    string         `json:"event_type"`
		EventPayload map[string]any `json:"event_payload"`
	}
	_ = json.Unmarshal(m.Metadata, &md)
	return md.EventType, md.EventPayload
}

// Call is one request the server received.
type Call struct {
	Method string
	Form   url.Values
	// Status is the HTTP status the server answered.
	Status int
	At     time.Time
}

// Failure is a scripted answer: HTTP status, optional Retry-After, optional Slack error code
// (answered as 200 {"ok":false,"error":code} when Status is 0).
type Failure struct {
	Status     int
	RetryAfter string
	Error      string
	// AfterPosting answers the failure only after chat.postMessage posted the message, as
	// Slack may when it times out or fails after doing the work.
	AfterPosting bool
}

// Server is the fake Web API.
type Server struct {
	// URL is the API base URL to give slack-go ("http://127.0.0.1:port/api/").
	URL string
	// Token is the bot token requests must carry.
	Token string

	srv      *httptest.Server
	mu       sync.Mutex
	calls    []Call
	messages []Message
	failures map[string][]Failure
	channels map[string]bool
	seq      int64
}

// New starts a server that accepts token; channels lists the channels that exist (any
// channel when empty). Close it when done.
func New(token string, channels ...string) *Server {
	s := &Server{Token: token, failures: map[string][]Failure{}, channels: map[string]bool{}}
	for _, c := range channels {
		s.channels[c] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/api/"
	return s
}

// NewOn is New on a given listener (end-to-end tests pass a fixed address to processes).
func NewOn(ln net.Listener, token string, channels ...string) *Server {
	s := &Server{Token: token, failures: map[string][]Failure{}, channels: map[string]bool{}}
	for _, c := range channels {
		s.channels[c] = true
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	s.URL = s.srv.URL + "/api/"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// FailNext makes the next len(fs) calls of method answer with the failures, in order.
func (s *Server) FailNext(method string, fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], fs...)
}

// Calls returns the calls of a method ("" for all), oldest first.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns the messages posted to channel ("" for all), oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if channel == "" || m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

// Inject stores a message as if it had been posted (tests of recovery after a lost answer).
func (s *Server) Inject(m Message) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if m.TS == "" {
		m.TS = s.ts()
	}
	s.messages = append(s.messages, m)
	return m
}

func (s *Server) ts() string {
	now := time.Now()
	return fmt.Sprintf("%d.%06d", now.Unix(), s.seq%1000000)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	_ = r.ParseForm()
	form := r.Form
	// The call is recorded before the first byte of its answer can reach the client, so a
	// test that reads Calls after a client call returned always sees it.
	w = &recordingWriter{ResponseWriter: w, record: func(status int) {
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: method, Form: form, Status: status, At: time.Now()})
		s.mu.Unlock()
	}}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	var fail *Failure
	if q := s.failures[method]; len(q) > 0 {
		fail = &q[0]
		s.failures[method] = q[1:]
	}
	s.mu.Unlock()
	if fail != nil && fail.AfterPosting && method == "chat.postMessage" {
		s.postMessage(httptest.NewRecorder(), form)
	}
	if fail != nil {
		if fail.Status != 0 {
			if fail.RetryAfter != "" {
				w.Header().Set("Retry-After", fail.RetryAfter)
			}
			w.WriteHeader(fail.Status)
			_, _ = w.Write([]byte("<html>slack is having a moment</html>"))
			return
		}
		writeJSON(w, map[string]any{"ok": false, "error": fail.Error})
		return
	}
	token := form.Get("token")
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = h
	}
	if token == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	}
	if token != s.Token {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	switch method {
	case "chat.postMessage":
		s.postMessage(w, form)
	case "conversations.history":
		s.history(w, form)
	case "auth.test":
		writeJSON(w, map[string]any{"ok": true, "team": "switchyard-test", "user": "switchyard", "bot_id": "B1"})
	default:
		writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func (s *Server) channelExists(c string) bool {
	return len(s.channels) == 0 || s.channels[c]
}

func (s *Server) postMessage(w http.ResponseWriter, form url.Values) {
	ch := form.Get("channel")
	s.mu.Lock()
	exists := s.channelExists(ch)
	s.mu.Unlock()
	switch {
	case ch == "" || !exists:
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	case form.Get("text") == "" && form.Get("blocks") == "":
		writeJSON(w, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	if b := form.Get("blocks"); b != "" && !json.Valid([]byte(b)) {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_blocks_format"})
		return
	}
	if md := form.Get("metadata"); md != "" && !json.Valid([]byte(md)) {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_metadata_format"})
		return
	}
	m := Message{Channel: ch, Text: form.Get("text")}
	if b := form.Get("blocks"); b != "" {
		m.Blocks = json.RawMessage(b)
	}
	if md := form.Get("metadata"); md != "" {
		m.Metadata = json.RawMessage(md)
	}
	m = s.Inject(m)
	writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": m.TS,
		"message": map[string]any{"type": "message", "text": m.Text, "ts": m.TS}})
}

// history answers newest first, like Slack, honouring oldest, limit, cursor (an offset here)
// and include_all_metadata.
func (s *Server) history(w http.ResponseWriter, form url.Values) {
	ch := form.Get("channel")
	s.mu.Lock()
	exists := s.channelExists(ch)
	var msgs []Message
	for i := len(s.messages) - 1; i >= 0; i-- {
		if s.messages[i].Channel == ch {
			msgs = append(msgs, s.messages[i])
		}
	}
	s.mu.Unlock()
	if !exists {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	if o := form.Get("oldest"); o != "" {
		oldest, _ := strconv.ParseFloat(o, 64)
		kept := msgs[:0]
		for _, m := range msgs {
			if ts, _ := strconv.ParseFloat(m.TS, 64); ts >= oldest {
				kept = append(kept, m)
			}
		}
		msgs = kept
	}
	limit, _ := strconv.Atoi(form.Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	start, _ := strconv.Atoi(form.Get("cursor"))
	if start > len(msgs) {
		start = len(msgs)
	}
	end := min(start+limit, len(msgs))
	withMeta := form.Get("include_all_metadata") == "1" || form.Get("include_all_metadata") == "true"
	out := []map[string]any{}
	for _, m := range msgs[start:end] {
		row := map[string]any{"type": "message", "ts": m.TS, "text": m.Text}
		if withMeta && len(m.Metadata) > 0 {
			row["metadata"] = m.Metadata
		}
		out = append(out, row)
	}
	resp := map[string]any{"ok": true, "messages": out, "has_more": end < len(msgs)}
	if end < len(msgs) {
		resp["response_metadata"] = map[string]any{"next_cursor": strconv.Itoa(end)}
	}
	writeJSON(w, resp)
}

// recordingWriter calls record once, with the status, as the answer's header is written.
type recordingWriter struct {
	http.ResponseWriter
	record func(status int)
	done   bool
}

func (w *recordingWriter) WriteHeader(status int) {
	if !w.done {
		w.done = true
		w.record(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
