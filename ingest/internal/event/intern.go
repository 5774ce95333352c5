package event

// Interner deduplicates the low-cardinality strings of a stream of events (flag keys,
// variation keys, context kinds, SDK names) so that each is allocated once instead of once per
// event. It is bounded: past MaxInterned distinct strings it stops remembering new ones (a
// stream of unique values only costs the lookup). Not safe for concurrent use.
type Interner struct {
	m map[string]string
}

// MaxInterned bounds an Interner.
const MaxInterned = 4096

// Bytes returns b as a string, reusing an earlier identical one.
func (in *Interner) Bytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := in.m[string(b)]; ok { // no allocation: the compiler looks up without converting
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string, 64)
	}
	if len(in.m) < MaxInterned && len(s) <= 256 {
		in.m[s] = s
	}
	return s
}
