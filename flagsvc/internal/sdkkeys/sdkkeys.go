// Package sdkkeys manages the SDK keys of an environment: server keys (secret, stored as
// SHA-256 hashes, shown once) and client keys (public, safe in browsers). Rotation issues a new
// key and lets the old one work for a grace period; revocation is immediate. Relays learn the
// valid keys from the next published ruleset.
package sdkkeys

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/flagsvc/internal/access"
	"github.com/switchyard-io/switchyard/flagsvc/internal/audit"
	"github.com/switchyard-io/switchyard/flagsvc/internal/domain"
	"github.com/switchyard-io/switchyard/flagsvc/internal/store"
	"github.com/switchyard-io/switchyard/flagsvc/internal/tokens"
	"github.com/switchyard-io/switchyard/platform/errs"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// DefaultGrace is how long a rotated key keeps working.
const DefaultGrace = 24 * time.Hour

// Key prefixes say what a key is at a glance (and let secret scanners find server keys).
const (
	ServerPrefix = "sdk-srv-"
	ClientPrefix = "sdk-cli-"
)

// Service manages SDK keys.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// New returns the service.
func New(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// Hash is the stored form of an SDK key (and what rulesets carry as "sha256:<hex>").
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func generate(kind ruleset.KeyKind) string {
	if kind == ruleset.KeyServer {
		return ServerPrefix + tokens.RandomString(40)
	}
	return ClientPrefix + tokens.RandomString(24)
}

// CreateInput creates a key.
type CreateInput struct {
	Kind ruleset.KeyKind `json:"kind"`
	Name string          `json:"name"`
}

func (s *Service) env(ctx context.Context, tx *store.Tx, c audit.Caller, projectKey, envKey string, action access.Action) (domain.Environment, error) {
	p, err := tx.ProjectByKey(ctx, c.P.OrgID, projectKey)
	if err != nil {
		return domain.Environment{}, err
	}
	if err := c.P.Require(access.ReadProject, access.Target{ProjectID: p.ID}); err != nil {
		return domain.Environment{}, err
	}
	e, err := tx.EnvironmentByKey(ctx, p.ID, envKey)
	if err != nil {
		return e, err
	}
	return e, c.P.Require(action, access.Target{ProjectID: p.ID, EnvironmentID: e.ID, Critical: e.Critical, Resource: "SDK keys"})
}

func resource(e domain.Environment, k domain.SDKKey) audit.Resource {
	return audit.Resource{Type: "sdk_key", ID: k.ID, Key: k.Name, ProjectID: e.ProjectID, EnvironmentID: e.ID}
}

// Create issues a key. The returned Key field holds the key; for server keys this is the only
// time it is shown.
func (s *Service) Create(ctx context.Context, c audit.Caller, projectKey, envKey string, in CreateInput) (domain.SDKKey, error) {
	if in.Kind != ruleset.KeyServer && in.Kind != ruleset.KeyClient {
		return domain.SDKKey{}, errs.Invalid("kind", "must be server or client")
	}
	if strings.TrimSpace(in.Name) == "" {
		in.Name = string(in.Kind) + " key"
	}
	var out domain.SDKKey
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		e, err := s.env(ctx, tx, c, projectKey, envKey, access.ManageProject)
		if err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, e, in.Kind, in.Name, "")
		if err != nil {
			return err
		}
		if err := tx.BumpRuleset(ctx, e.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "sdk_key.create", resource(e, out), nil, redacted(out), ""))
	})
	return out, err
}

func (s *Service) issue(ctx context.Context, tx *store.Tx, e domain.Environment, kind ruleset.KeyKind, name, rotatedFrom string) (domain.SDKKey, error) {
	key := generate(kind)
	public := ""
	if kind == ruleset.KeyClient {
		public = key
	}
	k, err := tx.InsertSDKKey(ctx, domain.SDKKey{EnvironmentID: e.ID, Kind: kind, Name: name, Prefix: key[:len(ServerPrefix)+4],
		RotatedFrom: rotatedFrom}, Hash(key), public)
	k.Key = key
	return k, err
}

func redacted(k domain.SDKKey) domain.SDKKey {
	if k.Kind == ruleset.KeyServer {
		k.Key = ""
	}
	return k
}

// List lists an environment's keys (client keys in full, server keys by prefix).
func (s *Service) List(ctx context.Context, c audit.Caller, projectKey, envKey string, includeRevoked bool) ([]domain.SDKKey, error) {
	var out []domain.SDKKey
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		e, err := s.env(ctx, tx, c, projectKey, envKey, access.ReadProject)
		if err != nil {
			return err
		}
		out, err = tx.ListSDKKeys(ctx, e.ID, includeRevoked)
		return err
	})
	return out, err
}

// Rotate issues a replacement key; the old one keeps working for grace (DefaultGrace if 0).
func (s *Service) Rotate(ctx context.Context, c audit.Caller, projectKey, envKey, id string, grace time.Duration) (domain.SDKKey, error) {
	if grace < 0 || grace > 30*24*time.Hour {
		return domain.SDKKey{}, errs.Invalid("grace", "must be between 0s and 720h")
	}
	if !tokens.ValidID(id) {
		return domain.SDKKey{}, errs.NotFound("SDK key not found")
	}
	var out domain.SDKKey
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		e, err := s.env(ctx, tx, c, projectKey, envKey, access.ManageProject)
		if err != nil {
			return err
		}
		old, err := tx.SDKKey(ctx, e.ID, id, true)
		if err != nil {
			return err
		}
		if old.RevokedAt != nil {
			return errs.PreconditionFailed("id", "the key is revoked")
		}
		if err := tx.ExpireSDKKey(ctx, old.ID, s.now().Add(grace)); err != nil {
			return err
		}
		if out, err = s.issue(ctx, tx, e, old.Kind, old.Name, old.ID); err != nil {
			return err
		}
		if err := tx.BumpRuleset(ctx, e.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "sdk_key.rotate", resource(e, old), redacted(old), redacted(out), "grace "+grace.String()))
	})
	return out, err
}

// Revoke disables a key now.
func (s *Service) Revoke(ctx context.Context, c audit.Caller, projectKey, envKey, id string) error {
	if !tokens.ValidID(id) {
		return errs.NotFound("SDK key not found")
	}
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		e, err := s.env(ctx, tx, c, projectKey, envKey, access.ManageProject)
		if err != nil {
			return err
		}
		k, err := tx.SDKKey(ctx, e.ID, id, true)
		if err != nil {
			return err
		}
		if err := tx.RevokeSDKKey(ctx, k.ID); err != nil {
			return err
		}
		if err := tx.BumpRuleset(ctx, e.ID); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, c.P.OrgID, audit.Entry(c, "sdk_key.revoke", resource(e, k), redacted(k), nil, ""))
	})
}
