package rulesets

import "sync/atomic"

// Subscriber receives an environment's new rulesets. It holds only the newest one not yet
// taken: a subscriber that falls behind skips intermediate versions instead of queueing them,
// so a slow client never delays the broadcast to the others and never grows memory.
type Subscriber struct {
	EnvID string
	// Stale is whether the subscription started while the relay served from disk.
	Stale bool

	latest atomic.Pointer[Entry]
	wake   chan struct{}
	done   chan struct{}
	ended  atomic.Bool
}

// Wake is signalled when a newer ruleset is waiting.
func (s *Subscriber) Wake() <-chan struct{} { return s.wake }

// Done is closed when the subscription ends (environment deleted, relay recovered from
// staleness, or shutdown).
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Take returns the newest waiting ruleset, or nil.
func (s *Subscriber) Take() *Entry { return s.latest.Swap(nil) }

func (s *Subscriber) offer(e *Entry) {
	s.latest.Store(e)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscriber) end() {
	if s.ended.CompareAndSwap(false, true) {
		close(s.done)
	}
}

// Subscribe registers a subscriber for an environment's changes.
func (s *Store) Subscribe(envID string) *Subscriber {
	sub := &Subscriber{EnvID: envID, Stale: s.Stale(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	if s.subs[envID] == nil {
		s.subs[envID] = map[*Subscriber]struct{}{}
	}
	s.subs[envID][sub] = struct{}{}
	s.mu.Unlock()
	return sub
}

// Unsubscribe removes a subscriber.
func (s *Store) Unsubscribe(sub *Subscriber) {
	s.mu.Lock()
	delete(s.subs[sub.EnvID], sub)
	if len(s.subs[sub.EnvID]) == 0 {
		delete(s.subs, sub.EnvID)
	}
	s.mu.Unlock()
	sub.end()
}

// EndAll ends every subscription (at shutdown).
func (s *Store) EndAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, subs := range s.subs {
		for sub := range subs {
			sub.end()
		}
	}
}

// Subscribers counts open subscriptions.
func (s *Store) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, subs := range s.subs {
		n += len(subs)
	}
	return n
}
