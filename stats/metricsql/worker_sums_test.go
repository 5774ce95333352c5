package metricsql

import "testing"

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
