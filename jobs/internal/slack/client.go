// Package slack delivers alerts to Slack with slack-go: chat.postMessage with Block Kit blocks
// and the alert's key as message metadata, conversations.history to find a message an
// interrupted attempt may already have posted, and retries of 429 and 5xx answers that honour
// Retry-After. It also renders alerts as Block Kit (render.go).
package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/platform/httpapi"
)

// DefaultAPIURL is Slack's Web API base URL (slack-go's default).
const DefaultAPIURL = slack.APIURL

// MetadataEventType is the event_type of the metadata every alert message carries; its payload
// holds the alert key, which is how an interrupted delivery finds its message again.
const MetadataEventType = "switchyard_alert"

// Config configures the client.
type Config struct {
	// Token is the bot token (xoxb-…). Empty: every Send fails with alert.ErrNotConfigured.
	Token string
	// APIURL is the Web API base URL, ending in "/" (tests point it at slacktest).
	APIURL string
	// MaxAttempts per call, counting the first (default 4).
	MaxAttempts int
	// MaxWait caps one wait, whatever Retry-After asks (default 60 s).
	MaxWait time.Duration
	// Sleep waits between attempts (tests record the waits instead); default a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// HTTPClient sends the requests (default: 15 s timeout per request).
	HTTPClient *http.Client
	Log        *slog.Logger
}

// Client posts alerts to Slack. It implements alert.Sender.
type Client struct {
	api *slack.Client
	cfg Config
}

// New returns a client.
func New(cfg Config) *Client {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Minute
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	doer := &retrying{client: cfg.HTTPClient, cfg: cfg}
	api := slack.New(cfg.Token, slack.OptionAPIURL(cfg.APIURL), slack.OptionHTTPClient(doer))
	return &Client{api: api, cfg: cfg}
}

// Send implements alert.Sender: chat.postMessage with the rendered blocks and the alert key
// as metadata.
func (c *Client) Send(ctx context.Context, a alert.Alert) (string, error) {
	if c.cfg.Token == "" {
		return "", alert.ErrNotConfigured
	}
	if a.Channel == "" {
		return "", fmt.Errorf("%w: no Slack channel for project %q (set one with PUT /v1/projects/%s/settings or -slack-default-channel)", alert.ErrPermanent, a.Project, a.Project)
	}
	m := Render(a)
	_, ts, err := c.api.PostMessageContext(ctx, a.Channel,
		slack.MsgOptionText(m.Text, false),
		slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataEventType, EventPayload: map[string]any{"alert_key": a.Key}}),
	)
	if err != nil {
		return "", classify("chat.postMessage", err)
	}
	return ts, nil
}

// Find implements alert.Sender: it pages through the channel's history since since and
// matches the metadata's alert key.
func (c *Client) Find(ctx context.Context, a alert.Alert, since time.Time) (string, bool, error) {
	if c.cfg.Token == "" {
		return "", false, alert.ErrNotConfigured
	}
	params := &slack.GetConversationHistoryParameters{ChannelID: a.Channel, Limit: 200, IncludeAllMetadata: true,
		Oldest: strconv.FormatInt(since.Unix(), 10)}
	for page := 0; page < 20; page++ {
		resp, err := c.api.GetConversationHistoryContext(ctx, params)
		if err != nil {
			return "", false, classify("conversations.history", err)
		}
		for _, m := range resp.Messages {
			if m.Metadata.EventType == MetadataEventType && m.Metadata.EventPayload["alert_key"] == a.Key {
				return m.Timestamp, true, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", false, nil
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return "", false, nil
}

// permanentErrors are Slack error codes retrying cannot fix.
var permanentErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "invalid_auth": true,
	"not_authed": true, "account_inactive": true, "token_revoked": true, "missing_scope": true,
	"invalid_blocks": true, "invalid_blocks_format": true, "msg_too_long": true, "no_text": true,
	"restricted_action": true, "invalid_metadata_format": true, "invalid_metadata_schema": true,
}

func classify(method string, err error) error {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && permanentErrors[se.Err] {
		return fmt.Errorf("%w: slack %s: %s", alert.ErrPermanent, method, se.Err)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code >= 400 && sc.Code < 500 && sc.Code != http.StatusTooManyRequests {
		return fmt.Errorf("%w: slack %s: %s", alert.ErrPermanent, method, sc.Status)
	}
	return fmt.Errorf("slack %s: %w", method, err)
}

// retrying is the HTTP client slack-go sends through: it retries 429 and 5xx answers (and
// connection errors) up to MaxAttempts, waiting what Retry-After asks (seconds), else an
// exponential backoff from 500 ms. Slack's Web API answers 429 with Retry-After on rate limits
// and may answer 503 with one during incidents. A post is retried here only after a 429 (not
// posted): a 5xx or a lost answer may come after Slack posted it, so the outbox's next attempt
// looks for the message before posting again (alert.Dispatcher).
type retrying struct {
	client *http.Client
	cfg    Config
}

func (r *retrying) Do(req *http.Request) (*http.Response, error) {
	method := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		resp, err := r.client.Do(req)
		retry := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if method == "chat.postMessage" {
			retry = err == nil && resp.StatusCode == http.StatusTooManyRequests
		}
		if !retry || attempt >= r.cfg.MaxAttempts || (attempt > 1 && req.GetBody == nil && req.Body != nil) {
			return resp, err
		}
		d := wait
		if resp != nil {
			if ra, ok := httpapi.RetryAfter(resp.Header); ok {
				d = ra
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			r.cfg.Log.Warn("slack answered; retrying", "method", method, "status", resp.StatusCode, "wait", d.String(), "attempt", attempt)
		} else {
			r.cfg.Log.Warn("slack unreachable; retrying", "method", method, "err", err, "wait", d.String(), "attempt", attempt)
		}
		if err := r.cfg.Sleep(req.Context(), min(d, r.cfg.MaxWait)); err != nil {
			return nil, err
		}
		wait *= 2
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
