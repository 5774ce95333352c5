package event

import (
	"testing"
)

// FuzzJSONDecode feeds arbitrary bytes to the collector's JSON batch decoder and the validator:
// they must never panic, and every accepted event must survive the Kafka record round trip.
func FuzzJSONDecode(f *testing.F) {
	f.Add([]byte(`[{"event_id":"` + testID + `","type":"exposure","timestamp":1732550000000,"context_kind":"user","context_key":"u1","flag_key":"f","variation_key":"on"}]`))
	f.Add([]byte(`[{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"u","event_key":"k","value":1e308,"properties":{"a":"b","c":1,"d":true}}]`))
	f.Add([]byte(`[{"event_id":"` + testID + `","type":"summary","timestamp":1,"start":1,"end":2,"counters":[{"flag_key":"f","variation_key":"","count":3}]}]`))
	f.Add([]byte(`[1,"x",null,{},[]]`))
	f.Add([]byte(`{"not":"an array"}`))
	var d JSONDecoder
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = d.Decode(body, 1000, func(e *Event, rej *Reject, raw func() []byte) {
			if rej != nil {
				if len(raw()) == 0 {
					t.Fatal("rejected element without raw JSON")
				}
				return
			}
			if Validate(e) != nil {
				return
			}
			Normalize(e, 1732550000000, 0, DefaultSkew)
			if Validate(e) != nil {
				t.Fatalf("normalized event became invalid: %+v", e)
			}
			r := Record{Event: *e, EnvironmentID: "env", ReceivedAt: 1}
			var got Record
			if err := DecodeRecord(AppendRecord(nil, &r), &got); err != nil {
				t.Fatalf("record round trip: %v", err)
			}
		})
	})
}

// FuzzDecodeRecord checks that the writer's record decoder rejects garbage without panicking
// and that whatever it accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	id, _ := ParseUUID(testID)
	f.Add(AppendRecord(nil, &Record{EnvironmentID: "e", Event: Event{ID: id, Type: TypeTrack, Timestamp: 1, ContextKind: "user", ContextKey: "u", EventKey: "k", Properties: []Property{{Key: "a", Kind: PropBool}}}}))
	f.Add(AppendRecord(nil, &Record{EnvironmentID: "e", Event: Event{ID: id, Type: TypeSummary, Timestamp: 1, Start: 1, End: 2, Counters: []Counter{{FlagKey: "f", Count: 1}}}}))
	f.Add([]byte{1, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := DecodeRecord(b, &r); err != nil {
			return
		}
		var again Record
		if err := DecodeRecord(AppendRecord(nil, &r), &again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
	})
}
