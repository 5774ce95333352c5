package stale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/jobs/internal/alert"
	"github.com/switchyard-io/switchyard/jobs/internal/flagsvc"
)

// DigestFlagService is what the digest reads from the flag service (the service token).
type DigestFlagService interface {
	FlagService
	Projects(ctx context.Context) ([]flagsvc.Project, error)
}

// DigestStore records each project's digest once per scheduled run, with its alert.
type DigestStore interface {
	Settings
	RecordDigest(ctx context.Context, project string, scheduledFor time.Time, staleFlags int, a *alert.Alert) (bool, error)
}

// Digester sends the weekly stale-flag digest of every project that wants it.
type Digester struct {
	Reporter     *Reporter
	Flags        DigestFlagService
	Store        DigestStore
	Log          *slog.Logger
	DashboardURL string
	Wake         func()
}

// Run builds and enqueues the digests of the run scheduled for scheduledFor; a project whose
// digest for that run was recorded already (by another replica, or before a restart) is
// skipped. Projects without stale flags get no message.
func (d *Digester) Run(ctx context.Context, scheduledFor time.Time) error {
	projects, err := d.Flags.Projects(ctx)
	if err != nil {
		return fmt.Errorf("stale digest: list projects: %w", err)
	}
	var errsSeen []error
	for _, p := range projects {
		ps, err := d.Store.ProjectSettings(ctx, p.Key)
		if err != nil {
			errsSeen = append(errsSeen, err)
			continue
		}
		if !ps.DigestEnabled {
			continue
		}
		rep, err := d.Reporter.Report(ctx, d.Flags, Query{Project: p.Key})
		if err != nil {
			d.Log.Warn("stale digest: report failed", "project", p.Key, "err", err)
			errsSeen = append(errsSeen, err)
			continue
		}
		var a *alert.Alert
		if len(rep.Items) > 0 {
			link := ""
			if d.DashboardURL != "" {
				link = strings.TrimRight(d.DashboardURL, "/") + "/p/" + url.PathEscape(p.Key) + "/stale"
			}
			a = &alert.Alert{Key: fmt.Sprintf("digest:%s:%s", p.Key, scheduledFor.UTC().Format(time.RFC3339)), Kind: alert.KindStaleDigest,
				Project: p.Key, At: scheduledFor.UTC(), Digest: &alert.Digest{Flags: DigestFlags(rep), DashboardURL: link}}
		}
		ok, err := d.Store.RecordDigest(ctx, p.Key, scheduledFor.UTC(), len(rep.Items), a)
		if err != nil {
			errsSeen = append(errsSeen, err)
			continue
		}
		if ok {
			d.Log.Info("stale digest recorded", "project", p.Key, "stale_flags", len(rep.Items), "run", scheduledFor.UTC())
			if a != nil && d.Wake != nil {
				d.Wake()
			}
		}
	}
	return errors.Join(errsSeen...)
}
