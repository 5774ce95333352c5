// Package domain holds the flag service's types — organizations, projects, environments, flags
// and their per-environment configuration, segments, keys, tokens, audit entries — and the pure
// rules over them. It knows nothing of HTTP, Kafka or SQL.
package domain

import (
	"encoding/json"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Organization owns projects, members and tokens.
type Organization struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person; they act through memberships and personal tokens.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Member is a user's membership in an organization.
type Member struct {
	User
	Role Role `json:"role"`
	// ProjectIDs scopes a project_admin to some projects; empty means all.
	ProjectIDs []string `json:"project_ids,omitempty"`
}

// Project groups flags and environments.
type Project struct {
	ID          string    `json:"id"`
	OrgID       string    `json:"-"`
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Environment is one place flags are served (development, staging, production, ...).
type Environment struct {
	ID         string `json:"id"`
	ProjectID  string `json:"project_id"`
	ProjectKey string `json:"project_key"`
	OrgID      string `json:"-"`
	Key        string `json:"key"`
	Name       string `json:"name"`
	Color      string `json:"color"`
	// Critical marks production-like environments: developers may only read them.
	Critical bool `json:"critical"`
	// Locked rejects flag and segment changes until unlocked.
	Locked     bool   `json:"locked"`
	LockReason string `json:"lock_reason,omitempty"`
	Position   int    `json:"position"`
	// RulesetVersion is the version of the newest ruleset published for the environment.
	RulesetVersion int64     `json:"ruleset_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// DefaultEnvironments are created with every new project.
var DefaultEnvironments = []Environment{
	{Key: "development", Name: "Development", Color: "#3b82f6"},
	{Key: "staging", Name: "Staging", Color: "#f59e0b"},
	{Key: "production", Name: "Production", Color: "#ef4444", Critical: true},
}

// Lifecycle of a flag.
type Lifecycle string

// Flag lifecycles.
const (
	LifecycleActive     Lifecycle = "active"
	LifecycleDeprecated Lifecycle = "deprecated"
	LifecycleArchived   Lifecycle = "archived"
)

// Flag is a project-level flag definition; its behaviour per environment is a FlagConfig.
type Flag struct {
	ID          string              `json:"id"`
	ProjectID   string              `json:"project_id"`
	Key         string              `json:"key"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Tags        []string            `json:"tags"`
	OwnerID     string              `json:"owner_id,omitempty"`
	Kind        ruleset.FlagKind    `json:"kind"`
	Variations  []ruleset.Variation `json:"variations"`
	Temporary   bool                `json:"temporary"`
	// RemovalDate is the planned removal date of a temporary flag (YYYY-MM-DD).
	RemovalDate string    `json:"removal_date,omitempty"`
	Lifecycle   Lifecycle `json:"lifecycle"`
	ClientSide  bool      `json:"client_side"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Environments carries per-environment state when listing (key → summary).
	Environments map[string]FlagEnvironmentSummary `json:"environments,omitempty"`
}

// FlagEnvironmentSummary is the part of a flag's configuration shown in lists.
type FlagEnvironmentSummary struct {
	On      bool  `json:"on"`
	Version int64 `json:"version"`
}

// FlagConfig is a flag's configuration in one environment (the per-environment fields of
// ruleset.Flag).
type FlagConfig struct {
	On            bool                   `json:"on"`
	OffVariation  string                 `json:"off_variation,omitempty"`
	Prerequisites []ruleset.Prerequisite `json:"prerequisites"`
	Targets       []ruleset.Target       `json:"targets"`
	Rules         []ruleset.Rule         `json:"rules"`
	Fallthrough   ruleset.Serve          `json:"fallthrough"`
	Salt          string                 `json:"salt,omitempty"`
}

// DropExperimentKeys turns the configuration's experiment rollouts into plain ones (same
// variations, weights and salt, so the same assignments): what a cloned environment gets, since
// an experiment runs in one environment and its rollout is set only by starting it there.
func (c *FlagConfig) DropExperimentKeys() {
	if c.Fallthrough.Rollout != nil {
		c.Fallthrough.Rollout.ExperimentKey = ""
	}
	for i := range c.Rules {
		if c.Rules[i].Serve.Rollout != nil {
			c.Rules[i].Serve.Rollout.ExperimentKey = ""
		}
	}
}

// FlagEnvironment is a flag's configuration in one environment with its version.
type FlagEnvironment struct {
	FlagKey        string    `json:"flag_key"`
	EnvironmentKey string    `json:"environment_key"`
	Version        int64     `json:"version"`
	UpdatedAt      time.Time `json:"updated_at"`
	FlagConfig
}

// ConfigVersion is one immutable version of a flag's configuration in an environment.
type ConfigVersion struct {
	Version   int64           `json:"version"`
	Config    FlagConfig      `json:"config"`
	Change    string          `json:"change"`
	Comment   string          `json:"comment"`
	Diff      json.RawMessage `json:"diff"`
	Actor     Actor           `json:"actor"`
	CreatedAt time.Time       `json:"created_at"`
}

// Actor is who made a change, as recorded in history and the audit log.
type Actor struct {
	Type string `json:"type"` // user | token | system
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Segment is a reusable set of contexts in one environment.
type Segment struct {
	ID            string                `json:"id"`
	EnvironmentID string                `json:"environment_id"`
	Key           string                `json:"key"`
	Name          string                `json:"name"`
	Description   string                `json:"description"`
	Rules         []ruleset.SegmentRule `json:"rules"`
	Version       int64                 `json:"version"`
	// Included/Excluded are returned only when the member lists are small enough to inline.
	Included      []ruleset.SegmentTarget `json:"included,omitempty"`
	Excluded      []ruleset.SegmentTarget `json:"excluded,omitempty"`
	IncludedCount int64                   `json:"included_count"`
	ExcludedCount int64                   `json:"excluded_count"`
	CreatedAt     time.Time               `json:"created_at"`
	UpdatedAt     time.Time               `json:"updated_at"`
}

// SDKKey is an environment's SDK key, without its secret.
type SDKKey struct {
	ID            string          `json:"id"`
	EnvironmentID string          `json:"environment_id"`
	Kind          ruleset.KeyKind `json:"kind"`
	Name          string          `json:"name"`
	// Prefix identifies the key in lists (the first characters).
	Prefix string `json:"prefix"`
	// Key is set for client keys (public) and, once, at creation of server keys.
	Key         string     `json:"key,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	RotatedFrom string     `json:"rotated_from,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	// HashHex is the key's SHA-256, never serialized to clients.
	HashHex string `json:"-"`
}

// APIToken is an API token, without its secret.
type APIToken struct {
	ID            string     `json:"id"`
	OrgID         string     `json:"-"`
	TokenID       string     `json:"token_id"`
	Kind          string     `json:"kind"` // personal | service
	Name          string     `json:"name"`
	UserID        string     `json:"user_id,omitempty"`
	Role          Role       `json:"role,omitempty"`
	ProjectID     string     `json:"project_id,omitempty"`
	EnvironmentID string     `json:"environment_id,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	LastUsedAt    *time.Time `json:"last_used_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	// CreatedByToken is the id of the token this one was created with (empty: none recorded).
	// Revoking that token with cascade revokes this one.
	CreatedByToken string `json:"created_by_token,omitempty"`
	// Token is the full secret, set only in the response that creates it.
	Token string `json:"token,omitempty"`
}

// AuditEntry is one record of the append-only audit log.
type AuditEntry struct {
	ID            int64           `json:"id"`
	At            time.Time       `json:"at"`
	Actor         Actor           `json:"actor"`
	Action        string          `json:"action"`
	ResourceType  string          `json:"resource_type"`
	ResourceID    string          `json:"resource_id"`
	ResourceKey   string          `json:"resource_key,omitempty"`
	ProjectID     string          `json:"project_id,omitempty"`
	EnvironmentID string          `json:"environment_id,omitempty"`
	Before        json.RawMessage `json:"before,omitempty"`
	After         json.RawMessage `json:"after,omitempty"`
	Comment       string          `json:"comment,omitempty"`
	IP            string          `json:"ip,omitempty"`
	UserAgent     string          `json:"user_agent,omitempty"`
}
