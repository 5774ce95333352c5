package metricsql

import (
	"testing"

	"github.com/google/uuid"
)

// TestUnitIndexFindsUnitsWhoseSlotsCollide: hashes of one bucket that land on the same slot (or
// on the table's last slot, wrapping around) are all found, and hashes that are not units are not.
func TestUnitIndexFindsUnitsWhoseSlotsCollide(t *testing.T) {
	var x unitIndex
	x.reset(5) // 16 slots
	// Same bucket (h % 1024 = 7); slot (h / 1024) & 15: 15, 15, 15 (wrapping to 0 and 1), 3.
	units := []uint64{15*1024 + 7, 31*1024 + 7, 47*1024 + 7, 3*1024 + 7}
	for i, h := range units {
		x.put(h, int32(i))
	}
	for i, h := range units {
		if got := x.get(h); got != int32(i) {
			t.Fatalf("unit %d (hash %d): found %d", i, h, got)
		}
	}
	for _, h := range []uint64{63*1024 + 7, 0*1024 + 7, 4*1024 + 7} {
		if got := x.get(h); got != -1 {
			t.Fatalf("hash %d is no unit's, found unit %d", h, got)
		}
	}
	// Reset for a bucket of more units: nothing of the previous bucket is left.
	x.reset(100)
	if len(x.slots) != 256 || x.get(units[0]) != -1 {
		t.Fatalf("after reset: %d slots, unit found %d", len(x.slots), x.get(units[0]))
	}
}

// TestEventSetFindsCopiesOnly: an event delivered twice (same context, id and conditions) is a
// copy; an id reused by another context of the bucket, or by another key's event of the same
// context, is a different event. Time-ordered ids, whose first bytes barely differ, are told
// apart as well.
func TestEventSetFindsCopiesOnly(t *testing.T) {
	x, y := uuid.New(), uuid.New()
	var s eventSet
	s.reset(6)
	// Two contexts of one bucket whose events of id x start at the same slot.
	a, b := uint64(5*sliceBuckets+7), uint64(6*sliceBuckets+7)
	for ; s.slot(b, x) != s.slot(a, x); b += sliceBuckets {
	}
	events := []rawEvent{
		{h: a, id: x, mask: 1, ts: 10},
		{h: a, id: x, mask: 1, ts: 10}, // a copy
		{h: b, id: x, mask: 1},         // another context's event, same id
		{h: a, id: x, mask: 2},         // another key's event, same id
		{h: a, id: y, mask: 1},
		{h: b, id: x, mask: 1}, // a copy of the third
	}
	for k, want := range []bool{true, false, true, true, true, false} {
		if got := s.add(events, int32(k)); got != want {
			t.Fatalf("event %d: added %v, want %v", k, got, want)
		}
	}
	events = events[:0]
	for range 2000 {
		events = append(events, rawEvent{h: a, id: uuid.Must(uuid.NewV7()), mask: 1})
	}
	events = append(events, events...)
	s.reset(len(events))
	for k := range events {
		if got, want := s.add(events, int32(k)), k < 2000; got != want {
			t.Fatalf("time-ordered event %d: added %v, want %v", k, got, want)
		}
	}
}
