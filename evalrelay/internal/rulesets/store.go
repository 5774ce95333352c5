// Package rulesets holds the newest ruleset of every environment a relay serves: compiled for
// evaluation, pre-serialized and pre-compressed (so serving one is a memory copy), indexed by
// the hashes of its SDK keys, persisted atomically to disk (so a relay boots without Kafka),
// and broadcast to streaming subscribers without letting a slow one hold up the rest.
package rulesets

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/sdks/go/evaluation"
	"github.com/switchyard-io/switchyard/sdks/go/ruleset"
)

// Entry is one environment's current ruleset. Entries are immutable once published.
type Entry struct {
	EnvID       string
	Environment ruleset.Environment
	Version     int64
	Compiled    *evaluation.Ruleset
	// JSON is the ruleset as served (Gzip compressed); ETag is "<environment id>-<version>", quoted.
	JSON        []byte
	ETag        string
	GeneratedAt time.Time
	ReceivedAt  time.Time
	// Patch, when not nil, is the stream's patch event from version PatchBase (the ruleset this
	// one replaced) to this one: only the flags and segments that changed.
	Patch     []byte
	PatchBase int64
	keys      []ruleset.SDKKey
	index     *index
	gzipOnce  sync.Once
	gzip      []byte
}

// Key is an SDK key's grant: its environment and kind.
type Key struct {
	Entry *Entry
	Kind  ruleset.KeyKind
	hash  [sha256.Size]byte
}

type keyGrant struct {
	env       string
	kind      ruleset.KeyKind
	expiresAt *time.Time
}

// snapshot is an immutable view swapped atomically on every change: readers never lock.
type snapshot struct {
	envs map[string]*Entry
	keys map[[sha256.Size]byte]keyGrant
}

// Errors of Apply.
var (
	// ErrMalformed: the record is not a usable ruleset; the previous one is kept.
	ErrMalformed = errors.New("malformed ruleset")
	// ErrStale: the record's version is not newer than the one served; it is ignored.
	ErrStale = errors.New("ruleset version is not newer")
	// ErrPersist: a ruleset is served but could not be written to disk (yet).
	ErrPersist = errors.New("ruleset served but not persisted")
)

// Store is the set of rulesets a relay serves.
type Store struct {
	snap atomic.Pointer[snapshot]
	dir  string

	mu   sync.Mutex // serializes writers and guards subs
	subs map[string]map[*Subscriber]struct{}

	stale atomic.Bool
	now   func() time.Time

	// dirty holds rulesets not yet written to disk; the persister writes the newest of each
	// environment in the background, so disk writes (and their fsyncs) never slow the feed.
	dirtyMu sync.Mutex
	dirty   map[string]*Entry
	wake    chan struct{}
	// fileMu orders a file's write after the check that its entry is still served, against
	// its removal: a deletion arriving during a write must not leave the file behind (a
	// restart without Kafka would serve the deleted environment's keys again).
	fileMu sync.Mutex
}

// New returns an empty store persisting to dir (empty: no persistence).
func New(dir string) *Store {
	s := &Store{dir: dir, subs: map[string]map[*Subscriber]struct{}{}, now: time.Now, dirty: map[string]*Entry{}, wake: make(chan struct{}, 1)}
	s.snap.Store(&snapshot{envs: map[string]*Entry{}, keys: map[[sha256.Size]byte]keyGrant{}})
	return s
}

// header is the part of a ruleset the relay itself needs beyond evaluation, with the flags and
// segments as they are in the document (to compute patches from).
type header struct {
	SchemaVersion int               `json:"schema_version"`
	Environment   json.RawMessage   `json:"environment"`
	Version       int64             `json:"version"`
	GeneratedAt   json.RawMessage   `json:"generated_at"`
	SDKKeys       []ruleset.SDKKey  `json:"sdk_keys"`
	Flags         []json.RawMessage `json:"flags"`
	Segments      []json.RawMessage `json:"segments"`
}

// Build validates and prepares a ruleset for serving, without installing it.
func Build(envID string, raw []byte, receivedAt time.Time) (*Entry, error) {
	return build(envID, raw, receivedAt, nil)
}

// build is Build given the entry the ruleset will replace (nil: none). Then it also makes the
// patch from prev, and compiles by applying that patch to prev's compiled ruleset, which decodes
// only the flags and segments that changed.
func build(envID string, raw []byte, receivedAt time.Time, prev *Entry) (*Entry, error) {
	if bytes.IndexByte(raw, '\n') >= 0 || bytes.IndexByte(raw, '\r') >= 0 { // not ContainsAny: 20× slower on ~190 KB
		// The stream carries a ruleset on one SSE data line: keep it free of raw newlines.
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		raw = buf.Bytes()
	}
	h, ok := outline(raw)
	if !ok { // invalid, or not written as the flag service writes it: encoding/json decides
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	// What CompileJSON would refuse, refused before a patch could compile the document instead.
	if h.SchemaVersion != ruleset.SchemaVersion {
		return nil, fmt.Errorf("%w: schema_version %d (this relay reads %d)", ErrMalformed, h.SchemaVersion, ruleset.SchemaVersion)
	}
	if h.Flags == nil || h.Segments == nil {
		return nil, fmt.Errorf("%w: flags and segments are required", ErrMalformed)
	}
	var env ruleset.Environment
	if err := json.Unmarshal(h.Environment, &env); err != nil || env.ID != envID {
		return nil, fmt.Errorf("%w: environment id %q under key %q", ErrMalformed, env.ID, envID)
	}
	for i, k := range h.SDKKeys {
		if _, err := hex.DecodeString(strings.TrimPrefix(k.Hash, "sha256:")); err != nil || !strings.HasPrefix(k.Hash, "sha256:") || len(k.Hash) != 71 {
			return nil, fmt.Errorf("%w: sdk_keys[%d].hash", ErrMalformed, i)
		}
	}
	var generatedAt time.Time
	_ = json.Unmarshal(h.GeneratedAt, &generatedAt) // informational
	// Serve exactly what was published: SDKs ignore sdk_keys (hashes only). The gzip copy is
	// made when first asked for, so compressing never delays a change reaching the streams.
	e := &Entry{
		EnvID: envID, Environment: env, Version: h.Version, JSON: raw,
		ETag: fmt.Sprintf(`"%s-%d"`, envID, h.Version), GeneratedAt: generatedAt, ReceivedAt: receivedAt, keys: h.SDKKeys,
		index: indexOf(&h),
	}
	if e.Patch = makePatch(prev, e); e.Patch != nil {
		e.PatchBase = prev.Version
		if compiled, err := prev.Compiled.PatchJSON(e.Patch); err == nil {
			e.Compiled = compiled
			return e, nil
		}
	}
	compiled, err := evaluation.CompileJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	e.Compiled = compiled
	return e, nil
}

// Gzip returns the served JSON gzip-compressed, compressing it on first use.
func (e *Entry) Gzip() []byte {
	e.gzipOnce.Do(func() {
		var gz bytes.Buffer
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&gz)
		_, _ = zw.Write(e.JSON)
		_ = zw.Close()
		gzipWriters.Put(zw)
		e.gzip = gz.Bytes()
	})
	return e.gzip
}

// gzipWriters are reused: a new writer allocates about a megabyte of compressor state, which
// at a burst of ruleset updates is most of the relay's garbage.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return zw
}}

// Apply installs a ruleset record (raw nil: the environment was deleted). It rejects
// malformed records and versions not newer than the one served, keeping the previous ruleset.
func (s *Store) Apply(envID string, raw []byte) (*Entry, error) {
	if raw == nil {
		s.remove(envID)
		return nil, nil
	}
	if v, ok := PeekVersion(raw); ok {
		if cur := s.Get(envID); cur != nil && v <= cur.Version {
			return nil, fmt.Errorf("%w: have %d, got %d", ErrStale, cur.Version, v)
		}
	}
	// Only the feed applies records, so the entry read here is still the one replaced below.
	e, err := build(envID, raw, s.now(), s.Get(envID))
	if err != nil {
		return nil, err
	}
	if err := s.install(e, true); err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) install(e *Entry, persist bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	cur := old.envs[e.EnvID]
	if cur != nil && e.Version <= cur.Version {
		return fmt.Errorf("%w: have %d, got %d", ErrStale, cur.Version, e.Version)
	}
	if e.Patch != nil && (cur == nil || cur.Version != e.PatchBase) {
		e.Patch = nil // not from the version it replaces (the entry is not published yet)
	}
	next := &snapshot{envs: make(map[string]*Entry, len(old.envs)+1), keys: make(map[[sha256.Size]byte]keyGrant, len(old.keys)+len(e.keys))}
	for id, x := range old.envs {
		next.envs[id] = x
	}
	next.envs[e.EnvID] = e
	for h, g := range old.keys {
		if g.env != e.EnvID {
			next.keys[h] = g
		}
	}
	for _, k := range e.keys {
		var h [sha256.Size]byte
		_, _ = hex.Decode(h[:], []byte(strings.TrimPrefix(k.Hash, "sha256:")))
		next.keys[h] = keyGrant{env: e.EnvID, kind: k.Kind, expiresAt: k.ExpiresAt}
	}
	s.snap.Store(next)
	// Streams first: the disk write (with its fsync) must not delay propagation.
	for sub := range s.subs[e.EnvID] {
		sub.offer(e)
	}
	if persist && s.dir != "" {
		s.dirtyMu.Lock()
		s.dirty[e.EnvID] = e
		s.dirtyMu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Flush writes every ruleset not yet on disk (the newest of each environment).
func (s *Store) Flush() error {
	s.dirtyMu.Lock()
	dirty := s.dirty
	s.dirty = map[string]*Entry{}
	s.dirtyMu.Unlock()
	var first error
	for id, e := range dirty {
		s.fileMu.Lock()
		if s.Get(id) != e {
			s.fileMu.Unlock()
			continue // replaced or deleted meanwhile; the newer one is (or was) queued
		}
		if beforeWrite != nil {
			beforeWrite(id)
		}
		err := writeFileAtomic(filepath.Join(s.dir, id+".json"), e.JSON)
		s.fileMu.Unlock()
		if err != nil {
			if first == nil {
				first = fmt.Errorf("%w: %v", ErrPersist, err)
			}
			s.dirtyMu.Lock()
			if _, newer := s.dirty[id]; !newer {
				s.dirty[id] = e // retry at the next flush
			}
			s.dirtyMu.Unlock()
		}
	}
	return first
}

// beforeWrite, when set (by tests), runs between a flush's check that a ruleset is still
// served and its write.
var beforeWrite func(envID string)

// FlushPace is the least time between two flushes of changed rulesets to disk.
var FlushPace = 200 * time.Millisecond

// Name implements lifecycle.Component.
func (s *Store) Name() string { return "ruleset persister" }

// Run writes changed rulesets to disk in the background until ctx ends, then flushes once more.
func (s *Store) Run(ctx context.Context) error {
	if s.dir == "" {
		<-ctx.Done()
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.Flush()
		case <-s.wake:
		case <-retry.C:
		}
		_ = s.Flush() // failures stay queued and are retried
		// Pace the writes: a burst of updates to one environment is one file write (each
		// is an fsync and a rename), and the copy on disk is only for booting without Kafka.
		select {
		case <-ctx.Done():
			return s.Flush()
		case <-time.After(FlushPace):
		}
	}
}

func (s *Store) remove(envID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	if _, ok := old.envs[envID]; !ok {
		return
	}
	next := &snapshot{envs: make(map[string]*Entry, len(old.envs)), keys: make(map[[sha256.Size]byte]keyGrant, len(old.keys))}
	for id, x := range old.envs {
		if id != envID {
			next.envs[id] = x
		}
	}
	for h, g := range old.keys {
		if g.env != envID {
			next.keys[h] = g
		}
	}
	s.snap.Store(next)
	if s.dir != "" {
		s.dirtyMu.Lock()
		delete(s.dirty, envID)
		s.dirtyMu.Unlock()
		s.fileMu.Lock() // after the snapshot without it: a flush from now on skips it
		_ = os.Remove(filepath.Join(s.dir, envID+".json"))
		s.fileMu.Unlock()
	}
	for sub := range s.subs[envID] {
		sub.end()
	}
	delete(s.subs, envID)
}

// Forget removes, as a tombstone would, every environment whose id keep does not hold, and
// returns their ids. The feed calls it once it has read the whole topic: an environment loaded
// from disk that the topic no longer has was deleted while this relay was down, and compaction
// has since dropped its tombstone — its keys must stop working.
func (s *Store) Forget(keep map[string]bool) []string {
	var gone []string
	for _, e := range s.Entries() {
		if !keep[e.EnvID] {
			s.remove(e.EnvID)
			gone = append(gone, e.EnvID)
		}
	}
	return gone
}

// Authenticate finds the environment of an SDK key by its hash. Unknown, expired and
// deleted keys are all simply not found.
func (s *Store) Authenticate(key string) (Key, bool) {
	if key == "" {
		return Key{}, false
	}
	h := sha256.Sum256([]byte(key))
	snap := s.snap.Load()
	g, ok := snap.keys[h]
	if !ok || (g.expiresAt != nil && !s.now().Before(*g.expiresAt)) {
		return Key{}, false
	}
	e := snap.envs[g.env]
	if e == nil {
		return Key{}, false
	}
	return Key{Entry: e, Kind: g.kind, hash: h}, true
}

// Valid reports whether a key authenticated earlier still grants what it granted then: the
// newest rulesets still list it for the same environment and kind, and it has not expired.
// Open streams check it, so a revoked or rotated-out key stops receiving rulesets with the
// ruleset that revokes it.
func (s *Store) Valid(k Key) bool {
	g, ok := s.snap.Load().keys[k.hash]
	return ok && k.Entry != nil && g.env == k.Entry.EnvID && g.kind == k.Kind &&
		(g.expiresAt == nil || s.now().Before(*g.expiresAt))
}

// Get returns an environment's current entry.
func (s *Store) Get(envID string) *Entry { return s.snap.Load().envs[envID] }

// Entries returns every current entry.
func (s *Store) Entries() []*Entry {
	snap := s.snap.Load()
	out := make([]*Entry, 0, len(snap.envs))
	for _, e := range snap.envs {
		out = append(out, e)
	}
	return out
}

// SetStale records whether the relay serves from its disk cache because Kafka is unreachable.
// Going from stale to fresh ends every stream, so SDKs reconnect and see the header go away.
func (s *Store) SetStale(stale bool) {
	if was := s.stale.Swap(stale); was && !stale {
		s.mu.Lock()
		for _, subs := range s.subs {
			for sub := range subs {
				if sub.Stale {
					sub.end()
				}
			}
		}
		s.mu.Unlock()
	}
}

// Stale reports whether the relay serves from its disk cache.
func (s *Store) Stale() bool { return s.stale.Load() }

// LoadDisk installs every ruleset persisted in the store's directory; it returns how many.
func (s *Store) LoadDisk() (int, error) {
	if s.dir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return 0, err
	}
	// Temporary files are what a crash (or a full disk) left between writing and renaming:
	// never served, and removed so they do not pile up.
	temps, _ := filepath.Glob(filepath.Join(s.dir, tempPattern))
	for _, f := range temps {
		_ = os.Remove(f)
	}
	files, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		envID := strings.TrimSuffix(filepath.Base(f), ".json")
		e, err := Build(envID, raw, info.ModTime())
		if err != nil {
			continue // a corrupt file is skipped; Kafka will bring the environment back
		}
		if s.install(e, false) == nil {
			n++
		}
	}
	return n, nil
}

// tempPattern names the temporary files rulesets are written to before being renamed.
const tempPattern = ".ruleset-*"

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PeekVersion reads the top-level "version" without decoding the rest of the document (the
// flag service writes it near the start), so outdated records are skipped cheaply.
func PeekVersion(raw []byte) (int64, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, false
		}
		if name, _ := t.(string); name == "version" {
			var v int64
			if dec.Decode(&v) != nil {
				return 0, false
			}
			return v, true
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return 0, false
		}
	}
	return 0, false
}
