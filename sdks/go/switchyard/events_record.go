package switchyard

import (
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
)

// Recording an evaluation (eventProcessor.evaluated) is on the caller's path: every Bool call with
// events on bumps a summary counter and checks the exposure dedup table. A single mutex for both
// made concurrent evaluations queue behind each other and bounce its cache line between cores, so:
//
//   - summary counts (and the deduplicated-exposure count) live in shards, one per P in practice:
//     a goroutine counts into the shard its P last used, under that shard's mutex, which is
//     uncontended and stays in the core's cache; a flush takes every shard's map in turn. Counts
//     stay exact: an increment happens under a shard's lock, before or after the flush takes it.
//   - the dedup table is read without a lock: an exposure already seen (the common case) costs a
//     hash and a probe; only a new exposure takes the processor's mutex, rechecks and inserts.

// countShard is one shard of the summary counts, padded so that shards do not share a cache line.
// A served variation is counted by its address, much cheaper to hash than the summary key's
// strings: a compiled evaluation.Variation belongs to one compiled flag, whose key and version
// never change. Results without a variation (errors, fallbacks) are counted by summary key.
type countShard struct {
	mu       sync.Mutex
	served   map[*evaluation.Variation]*servedCount
	fallback map[summaryKey]int64
	deduped  uint64
	_        [64]byte
}

type servedCount struct {
	flag    string
	version int64
	n       int64
}

// countShards spreads counting over shards with per-P affinity.
type countShards struct {
	shards []countShard
	// picks holds shard indices. sync.Pool keeps a per-P cache, so Get and Put on the same P hand
	// back the same index without any shared write; an index lost to GC is replaced by the next.
	picks sync.Pool
	next  atomic.Uint32
}

func newCountShards() *countShards {
	s := &countShards{shards: make([]countShard, max(runtime.GOMAXPROCS(0), 1))}
	for i := range s.shards {
		s.shards[i].reset()
	}
	s.picks.New = func() any {
		i := int(s.next.Add(1)-1) % len(s.shards)
		return &i
	}
	return s
}

func (sh *countShard) reset() {
	sh.served = map[*evaluation.Variation]*servedCount{}
	sh.fallback = map[summaryKey]int64{}
}

func (s *countShards) shard() *countShard {
	i := s.picks.Get().(*int)
	s.picks.Put(i)
	return &s.shards[*i]
}

// add counts one evaluation of flagKey (unless !count) and, with dup, one deduplicated exposure.
func (s *countShards) add(flagKey string, r *evaluation.Result, count, dup bool) {
	sh := s.shard()
	sh.mu.Lock()
	switch {
	case !count:
	case r.Variation == nil:
		sh.fallback[summaryKey{flagKey, "", r.FlagVersion()}]++
	default:
		c := sh.served[r.Variation]
		if c == nil {
			c = &servedCount{flag: flagKey, version: r.FlagVersion()}
			sh.served[r.Variation] = c
		}
		c.n++
	}
	if dup {
		sh.deduped++
	}
	sh.mu.Unlock()
}

// take returns the counts since the last take and starts new ones.
func (s *countShards) take() map[summaryKey]int64 {
	var out map[summaryKey]int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		served, fallback := sh.served, sh.fallback
		// Decided under the lock: maps left in place (empty) are the shard's again once it is
		// unlocked, and counts added to them then belong to the next take.
		empty := len(served)+len(fallback) == 0
		if !empty {
			sh.reset()
		}
		sh.mu.Unlock()
		if empty {
			continue
		}
		if out == nil {
			out = map[summaryKey]int64{}
		}
		for v, c := range served {
			out[summaryKey{c.flag, v.Key, c.version}] += c.n
		}
		for k, n := range fallback {
			out[k] += n
		}
	}
	return out
}

// deduplicated returns the number of exposures deduplicated so far.
func (s *countShards) deduplicated() uint64 {
	var n uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.deduped
		sh.mu.Unlock()
	}
	return n
}

// exposureID hashes an exposure's identity for the dedup table.
func exposureID(seed maphash.Seed, k exposureKey) uint64 {
	if id := maphash.Comparable(seed, k); id != 0 {
		return id
	}
	return 1 // 0 marks an empty slot
}

// dedupGen is the two generations of seen exposures; an exposure is a duplicate while it is in
// either. A dedupGen is never modified once published, except for insertions into seen.
type dedupGen struct{ seen, prev *idSet }

// idSet is a set of exposure ids (never 0): an open-addressed hash table that any goroutine may
// read without a lock while one writer (holding eventProcessor.mu) inserts. It grows by copying
// into a new set, published as a new dedupGen; a reader still holding the old one may miss an
// id inserted since, and then rechecks under the lock.
type idSet struct {
	slots []atomic.Uint64 // a power of two long, at most half full
	n     int             // ids in the set; written under eventProcessor.mu
}

const minIDSetSlots = 256

func newIDSet(slots int) *idSet { return &idSet{slots: make([]atomic.Uint64, slots)} }

func (s *idSet) has(id uint64) bool {
	mask := uint64(len(s.slots) - 1)
	for i := id & mask; ; i = (i + 1) & mask {
		switch s.slots[i].Load() {
		case id:
			return true
		case 0:
			return false
		}
	}
}

// insert adds an id that is not in the set, and returns the set to use from now on: s, or a copy
// twice as large when s is half full.
func (s *idSet) insert(id uint64) *idSet {
	if 2*(s.n+1) > len(s.slots) {
		bigger := newIDSet(2 * len(s.slots))
		for i := range s.slots {
			if v := s.slots[i].Load(); v != 0 {
				bigger.put(v)
			}
		}
		s = bigger
	}
	s.put(id)
	return s
}

func (s *idSet) put(id uint64) {
	mask := uint64(len(s.slots) - 1)
	i := id & mask
	for s.slots[i].Load() != 0 {
		i = (i + 1) & mask
	}
	s.slots[i].Store(id)
	s.n++
}
