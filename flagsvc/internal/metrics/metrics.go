// Package metrics manages the metric catalog of a project: what growth teams measure
// experiments and guardrails with, defined without SQL, validated with clear errors and
// versioned, so an experiment records exactly the definition it was analysed with.
package metrics

import (
	"context"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/platform/errs"
)

// Service manages metrics.
type Service struct {
	store *store.Store
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st} }

func project(ctx context.Context, tx *store.Tx, c audit.Caller, key string, action access.Action) (domain.Project, error) {
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, key)
	if err != nil {
		return p, err
	}
	return p, c.P.Require(action, access.Target{ProjectID: p.ID, Resource: "metrics"})
}

// checkRatio checks that a ratio's parts are two different metrics that exist, are not ratios
// themselves, and are live.
func checkRatio(ctx context.Context, tx *store.Tx, projectID string, m *domain.Metric) error {
	if m.Kind != domain.MetricRatio {
		return nil
	}
	if m.Numerator == m.Denominator {
		return errs.Invalid("denominator", "a ratio divides two different metrics; %q over itself is always 1", m.Numerator)
	}
	for _, ref := range [][2]string{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
		field, key := ref[0], ref[1]
		part, _, err := tx.MetricByKey(ctx, projectID, key, false)
		if errs.KindOf(err) == errs.KindNotFound {
			return errs.Invalid(field, "unknown metric %q", key)
		}
		if err != nil {
			return err
		}
		if part.Kind == domain.MetricRatio {
			return errs.Invalid(field, "metric %q is a ratio; a ratio's parts are proportion, mean, sum or count metrics", key)
		}
		if part.Archived {
			return errs.Invalid(field, "metric %q is archived", key)
		}
	}
	return nil
}

func resource(p domain.Project, m domain.Metric) audit.Resource {
	return audit.Resource{Type: "metric", ID: p.ID + "/" + m.Key, Key: m.Key, ProjectID: p.ID}
}

// Create adds a metric to the catalog.
func (s *Service) Create(ctx context.Context, c audit.Caller, projectKey string, m domain.Metric) (domain.Metric, error) {
	domain.MetricDefaults(&m)
	if err := domain.ValidateMetric(&m); err != nil {
		return m, err
	}
	var out domain.Metric
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.WriteFlag)
		if err != nil {
			return err
		}
		if err := checkRatio(ctx, tx, p.ID, &m); err != nil {
			return err
		}
		if out, err = tx.InsertMetric(ctx, p.ID, m, c.P.Actor); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "metric.create", resource(p, out), nil, out, ""))
	})
	return out, err
}

// Get returns a metric.
func (s *Service) Get(ctx context.Context, c audit.Caller, projectKey, key string) (domain.Metric, error) {
	var out domain.Metric
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.ReadProject)
		if err != nil {
			return err
		}
		out, _, err = tx.MetricByKey(ctx, p.ID, key, false)
		return err
	})
	return out, err
}

// List lists a project's metrics.
func (s *Service) List(ctx context.Context, c audit.Caller, projectKey string, includeArchived bool) ([]domain.Metric, error) {
	var out []domain.Metric
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.ReadProject)
		if err != nil {
			return err
		}
		out, err = tx.ListMetrics(ctx, p.ID, includeArchived)
		return err
	})
	return out, err
}

// Update replaces a metric's definition as its next version. The key and kind are immutable
// (experiments compare versions of the same thing).
func (s *Service) Update(ctx context.Context, c audit.Caller, projectKey, key string, m domain.Metric, version *int64) (domain.Metric, error) {
	if m.Key != "" && m.Key != key {
		return m, errs.Invalid("key", "metric keys cannot change")
	}
	m.Key = key
	domain.MetricDefaults(&m)
	if err := domain.ValidateMetric(&m); err != nil {
		return m, err
	}
	var out domain.Metric
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.WriteFlag)
		if err != nil {
			return err
		}
		before, id, err := tx.MetricByKey(ctx, p.ID, key, true)
		if err != nil {
			return err
		}
		if version != nil && *version != before.Version {
			return errs.Conflict("version", "metric %q was changed since version %d (now %d); reload and retry", key, *version, before.Version)
		}
		if m.Kind != before.Kind {
			return errs.Invalid("kind", "a metric's kind cannot change (create a new metric)")
		}
		if err := checkRatio(ctx, tx, p.ID, &m); err != nil {
			return err
		}
		m.Archived = before.Archived
		if out, err = tx.UpdateMetric(ctx, id, m, c.P.Actor); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "metric.update", resource(p, out), before, out, ""))
	})
	return out, err
}

// Archive retires a metric (project admins). Experiments keep the version they recorded.
func (s *Service) Archive(ctx context.Context, c audit.Caller, projectKey, key string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.DeleteFlag)
		if err != nil {
			return err
		}
		before, id, err := tx.MetricByKey(ctx, p.ID, key, true)
		if err != nil {
			return err
		}
		if before.Archived {
			return nil
		}
		m := before
		m.Archived = true
		out, err := tx.UpdateMetric(ctx, id, m, c.P.Actor)
		if err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "metric.archive", resource(p, out), before, out, ""))
	})
}

// Versions lists a metric's definitions, newest first.
func (s *Service) Versions(ctx context.Context, c audit.Caller, projectKey, key string) ([]store.MetricVersion, error) {
	var out []store.MetricVersion
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		p, err := project(ctx, tx, c, projectKey, access.ReadProject)
		if err != nil {
			return err
		}
		_, id, err := tx.MetricByKey(ctx, p.ID, key, false)
		if err != nil {
			return err
		}
		out, err = tx.MetricVersions(ctx, id)
		return err
	})
	return out, err
}
