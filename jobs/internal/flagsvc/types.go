package flagsvc

import (
	"encoding/json"
	"time"

	"github.com/switchyard-io/switchyard/stats/metricsql"
)

// Actor is who made a change.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Me is GET /me: the caller's organization, identity, role and scopes.
type Me struct {
	Organization struct {
		ID   string `json:"id"`
		Key  string `json:"key"`
		Name string `json:"name"`
	} `json:"organization"`
	Actor Actor  `json:"actor"`
	Role  string `json:"role"`
	// ProjectIDs scopes a project admin to some projects (empty: all).
	ProjectIDs []string `json:"project_ids,omitempty"`
	// Scope scopes a service token: project_id and environment_id.
	Scope map[string]string `json:"scope,omitempty"`
}

// Project is a project.
type Project struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
}

// Environment is an environment of a project.
type Environment struct {
	ID         string `json:"id"`
	ProjectID  string `json:"project_id"`
	ProjectKey string `json:"project_key"`
	Key        string `json:"key"`
	Name       string `json:"name"`
	Critical   bool   `json:"critical"`
	Locked     bool   `json:"locked"`
}

// Member is a member of the organization.
type Member struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// Variation is one value a flag can serve.
type Variation struct {
	Key   string          `json:"key"`
	Name  string          `json:"name,omitempty"`
	Value json.RawMessage `json:"value"`
}

// Flag is a flag definition as listed.
type Flag struct {
	ID          string      `json:"id"`
	Key         string      `json:"key"`
	Name        string      `json:"name"`
	OwnerID     string      `json:"owner_id,omitempty"`
	Kind        string      `json:"kind"`
	Variations  []Variation `json:"variations"`
	Temporary   bool        `json:"temporary"`
	RemovalDate string      `json:"removal_date,omitempty"`
	Lifecycle   string      `json:"lifecycle"`
	Tags        []string    `json:"tags"`
	Version     int64       `json:"version"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// FlagDetail is a flag with its configuration per environment key.
type FlagDetail struct {
	Flag
	Configs map[string]FlagEnvironment `json:"configs"`
}

// Weighted is one variation's share of a rollout (units of 1/100000).
type Weighted struct {
	Variation string `json:"variation"`
	Weight    int    `json:"weight"`
}

// Rollout splits contexts between variations.
type Rollout struct {
	Variations    []Weighted `json:"variations"`
	ExperimentKey string     `json:"experiment_key,omitempty"`
	Salt          string     `json:"salt,omitempty"`
}

// Serve is what a rule or the fallthrough serves.
type Serve struct {
	Variation string   `json:"variation,omitempty"`
	Rollout   *Rollout `json:"rollout,omitempty"`
}

// Rule is a targeting rule (only what the jobs service reads).
type Rule struct {
	ID    string `json:"id"`
	Serve Serve  `json:"serve"`
}

// FlagEnvironment is a flag's configuration in one environment, with its version.
type FlagEnvironment struct {
	FlagKey        string    `json:"flag_key"`
	EnvironmentKey string    `json:"environment_key"`
	Version        int64     `json:"version"`
	UpdatedAt      time.Time `json:"updated_at"`
	On             bool      `json:"on"`
	OffVariation   string    `json:"off_variation,omitempty"`
	Rules          []Rule    `json:"rules"`
	Fallthrough    Serve     `json:"fallthrough"`
}

// ConfigVersion is one entry of a configuration's history.
type ConfigVersion struct {
	Version   int64     `json:"version"`
	Change    string    `json:"change"`
	Comment   string    `json:"comment"`
	Actor     Actor     `json:"actor"`
	CreatedAt time.Time `json:"created_at"`
}

// RulesetFlag is a flag as compiled into an environment's ruleset.
type RulesetFlag struct {
	Key          string `json:"key"`
	On           bool   `json:"on"`
	OffVariation string `json:"off_variation,omitempty"`
	Rules        []Rule `json:"rules"`
	Fallthrough  Serve  `json:"fallthrough"`
}

// Ruleset is an environment's compiled ruleset (only what the jobs service reads).
type Ruleset struct {
	Environment struct {
		ID         string `json:"id"`
		Key        string `json:"key"`
		ProjectKey string `json:"project_key"`
	} `json:"environment"`
	Version int64         `json:"version"`
	Flags   []RulesetFlag `json:"flags"`
}

// ExperimentKeys returns the experiments whose rollouts the flag serves (fallthrough or rules).
func (f RulesetFlag) ExperimentKeys() []string {
	var out []string
	add := func(s Serve) {
		if s.Rollout != nil && s.Rollout.ExperimentKey != "" {
			out = append(out, s.Rollout.ExperimentKey)
		}
	}
	add(f.Fallthrough)
	for _, r := range f.Rules {
		add(r.Serve)
	}
	return out
}

// ExperimentVariation is an experiment arm and its weight.
type ExperimentVariation struct {
	Variation string `json:"variation"`
	Weight    int    `json:"weight"`
}

// Experiment is an experiment on a flag in an environment.
type Experiment struct {
	Key         string                `json:"key"`
	Name        string                `json:"name"`
	OwnerID     string                `json:"owner_id,omitempty"`
	Environment string                `json:"environment"`
	Flag        string                `json:"flag"`
	Status      string                `json:"status"`
	Control     string                `json:"control"`
	Variations  []ExperimentVariation `json:"variations"`
	Analysis    struct {
		Alpha            float64 `json:"alpha"`
		Sequential       bool    `json:"sequential"`
		SequentialTuning float64 `json:"sequential_tuning"`
	} `json:"analysis"`
	StartedAt      *time.Time       `json:"started_at,omitempty"`
	StoppedAt      *time.Time       `json:"stopped_at,omitempty"`
	ConcludedAt    *time.Time       `json:"concluded_at,omitempty"`
	MetricVersions map[string]int64 `json:"metric_versions,omitempty"`
	EnvironmentID  string           `json:"environment_id,omitempty"`
	Project        string           `json:"project,omitempty"`
	Decision       *struct {
		Outcome   string `json:"outcome"`
		Variation string `json:"variation"`
	} `json:"decision,omitempty"`
}

// Metric is one version of a metric definition; Filter is one of its event filters.
type (
	Metric = metricsql.Definition
	Filter = metricsql.Filter
)

// Breach is a guardrail's breach record.
type Breach struct {
	At       time.Time  `json:"at"`
	Effect   float64    `json:"effect"`
	Interval [2]float64 `json:"interval"`
	PValue   float64    `json:"p_value"`
	// Absolute: Effect and Interval are a difference of means (the control's mean was 0).
	Absolute    bool   `json:"absolute,omitempty"`
	ActionTaken string `json:"action_taken"`
}

// Guardrail is a guardrail on an experiment or a percentage rollout.
type Guardrail struct {
	ID            string    `json:"id"`
	Project       string    `json:"project"`
	Environment   string    `json:"environment"`
	EnvironmentID string    `json:"environment_id"`
	Flag          string    `json:"flag"`
	Experiment    string    `json:"experiment,omitempty"`
	Metric        string    `json:"metric"`
	Tolerance     float64   `json:"tolerance"`
	Action        string    `json:"action"`
	Control       string    `json:"control"`
	Treatments    []string  `json:"treatments"`
	Status        string    `json:"status"`
	Breach        *Breach   `json:"breach,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// BreachReport is what the jobs service tells the flag service about a breach.
type BreachReport struct {
	Effect   float64    `json:"effect"`
	Interval [2]float64 `json:"interval"`
	PValue   float64    `json:"p_value"`
	Absolute bool       `json:"absolute"`
}
