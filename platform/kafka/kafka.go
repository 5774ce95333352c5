// Package kafka builds franz-go clients with Switchyard's defaults and creates the topics a
// service needs at start-up (kadm), so a fresh broker works without manual steps.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic names of the platform (ARCHITECTURE.md); each service can override them by config.
const (
	TopicRulesets  = "switchyard.rulesets"
	TopicEvents    = "switchyard.events"
	TopicEventsDLQ = "switchyard.events.dlq"
)

// TopicSpec describes a topic to create if missing.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Replication factor; -1 means the broker's default.
	Replication int16
	Configs     map[string]string
}

// SplitBrokers parses a comma-separated broker list.
func SplitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, specs ...TopicSpec) error {
	adm := kadm.NewClient(cl)
	for _, s := range specs {
		configs := map[string]*string{}
		for k, v := range s.Configs {
			configs[k] = &v
		}
		repl := s.Replication
		if repl == 0 {
			repl = -1
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, repl, configs, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", s.Name, err)
		}
	}
	return nil
}

// Ping checks that a broker answers a metadata request.
func Ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// RulesetTopic is the compacted topic carrying the newest ruleset of every environment.
func RulesetTopic(name string) TopicSpec {
	return TopicSpec{Name: name, Partitions: 1, Configs: map[string]string{
		"cleanup.policy":        "compact",
		"max.message.bytes":     "67108864",
		"min.compaction.lag.ms": "0",
		"segment.ms":            "3600000",
	}}
}
