package feed

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/evalrelay/internal/relaytest"
	"github.com/switchyard-io/switchyard/evalrelay/internal/rulesets"
	"github.com/switchyard-io/switchyard/platform/testenv"
)

const topic = "rulesets"

func newFeed() *Feed {
	return New(Config{Topic: topic}, rulesets.New(""), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

// fetch is one fetch of partition 0 holding records (env, value; nil value: a tombstone) from offset 0.
func fetch(recs ...*kgo.Record) kgo.Fetches {
	for i, r := range recs {
		r.Topic, r.Offset = topic, int64(i)
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{{Partition: 0, Records: recs}}}}}}
}

func rec(env string, v int64) *kgo.Record {
	return &kgo.Record{Key: []byte(env), Value: relaytest.JSON(relaytest.Ruleset(env, v, true))}
}

func tombstone(env string) *kgo.Record { return &kgo.Record{Key: []byte(env)} }

// TestConsumeAppliesAFetchAsReadOneByOne: a fetch's records of an environment end as they
// would read one at a time — the newest version, whatever the order; a tombstone deletes
// what came before it, and a re-creation after it is applied even at a lower version.
func TestConsumeAppliesAFetchAsReadOneByOne(t *testing.T) {
	malformed := &kgo.Record{Key: []byte("e1"), Value: []byte(`{"version": 9, "schema_version": 0}`)}
	for _, c := range []struct {
		name string
		recs []*kgo.Record
		want int64 // served version; 0: none
	}{
		{"in order", []*kgo.Record{rec("e1", 1), rec("e1", 2), rec("e1", 3)}, 3},
		{"a lagging older version last", []*kgo.Record{rec("e1", 4), rec("e1", 2)}, 4},
		{"deleted", []*kgo.Record{rec("e1", 4), tombstone("e1")}, 0},
		{"re-created at a lower version", []*kgo.Record{rec("e1", 7), tombstone("e1"), rec("e1", 2)}, 2},
		{"equal versions", []*kgo.Record{rec("e1", 5), rec("e1", 5)}, 5},
		{"newest malformed", []*kgo.Record{rec("e1", 3), malformed}, 3},
		{"unreadable version", []*kgo.Record{{Key: []byte("e1"), Value: []byte(`not json`)}, rec("e1", 2)}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFeed()
			f.consume(fetch(c.recs...))
			e := f.store.Get("e1")
			switch {
			case c.want == 0 && e != nil:
				t.Fatalf("served version %d, want none", e.Version)
			case c.want != 0 && (e == nil || e.Version != c.want):
				t.Fatalf("served %+v, want version %d", e, c.want)
			}
			if !f.reached(kadm.ListedOffsets{topic: {0: {Topic: topic, Partition: 0, Offset: int64(len(c.recs))}}}) {
				t.Fatalf("position %v after the fetch, want %d", f.pos, len(c.recs))
			}
		})
	}
}

// TestConsumeMovesThePositionAfterApplying: the feed has caught up (ready, and forgetting the
// environments loaded from disk that the topic lacks) when its position reaches the topic's
// end — so a fetch's records are applied before the position moves past them, never after.
// The watcher is held off (it needs the position's lock) while the fetch is applied.
func TestConsumeMovesThePositionAfterApplying(t *testing.T) {
	f := newFeed()
	f.posMu.Lock()
	locked := true
	defer func() {
		if locked {
			f.posMu.Unlock()
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.consume(fetch(rec("e1", 1), rec("e2", 1)))
	}()
	testenv.Eventually(t, 5*time.Second, "the fetch to be applied before its position is recorded", func() bool {
		return f.store.Get("e1") != nil && f.store.Get("e2") != nil
	})
	f.posMu.Unlock()
	locked = false
	<-done
	if !f.reached(kadm.ListedOffsets{topic: {0: {Topic: topic, Partition: 0, Offset: 2}}}) || !f.seen["e1"] || !f.seen["e2"] {
		t.Fatalf("after the fetch: positions %v, seen %v", f.pos, f.seen)
	}
}
