package event

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const testID = "0192f0c1-8a2b-7c3d-9e4f-0a1b2c3d4e5f"

func decodeOne(t *testing.T, js string) (Event, *Reject) {
	t.Helper()
	var d JSONDecoder
	var got Event
	var rej *Reject
	n := 0
	if err := d.Decode([]byte("["+js+"]"), 10, func(e *Event, r *Reject, _ func() []byte) {
		n++
		got, rej = *e, r
		if rej == nil {
			rej = Validate(e)
		}
	}); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if n != 1 {
		t.Fatalf("decoded %d events, want 1", n)
	}
	return got, rej
}

func TestDecodeAndValidate(t *testing.T) {
	long := strings.Repeat("x", 257)
	tests := []struct {
		name   string
		json   string
		reason Reason // "" = valid
		field  string
	}{
		{"exposure", `{"event_id":"` + testID + `","type":"exposure","timestamp":1732550000000,"context_kind":"user","context_key":"u1","flag_key":"f","variation_key":"on","flag_version":3,"reason":"rule_match","rule_id":"r1","experiment_key":"e","sdk":{"name":"go","version":"1.0.0"}}`, "", ""},
		{"track with value and properties", `{"event_id":"` + testID + `","type":"track","timestamp":1732550000000,"context_kind":"user","context_key":"u1","event_key":"purchase","value":12.5,"properties":{"plan":"pro","seats":3,"trial":false}}`, "", ""},
		{"summary", `{"event_id":"` + testID + `","type":"summary","timestamp":1732550000000,"start":1732549990000,"end":1732550000000,"counters":[{"flag_key":"f","variation_key":"on","flag_version":1,"count":5},{"flag_key":"f","variation_key":"","count":1}]}`, "", ""},
		{"exponent timestamp", `{"event_id":"` + testID + `","type":"track","timestamp":1.7325e12,"context_kind":"user","context_key":"u1","event_key":"k"}`, "", ""},
		{"unknown fields ignored", `{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"u1","event_key":"k","future":{"x":1}}`, "", ""},
		{"not an object", `42`, ReasonMalformed, ""},
		{"missing event id", `{"type":"track","timestamp":1,"context_kind":"user","context_key":"u1","event_key":"k"}`, ReasonInvalidEventID, "event_id"},
		{"bad event id", `{"event_id":"nope","type":"track","timestamp":1,"context_kind":"user","context_key":"u1","event_key":"k"}`, ReasonInvalidEventID, "event_id"},
		{"nil event id", `{"event_id":"00000000-0000-0000-0000-000000000000","type":"track","timestamp":1,"context_kind":"user","context_key":"u1","event_key":"k"}`, ReasonInvalidEventID, "event_id"},
		{"unknown type", `{"event_id":"` + testID + `","type":"click","timestamp":1}`, ReasonUnknownType, "type"},
		{"missing type", `{"event_id":"` + testID + `","timestamp":1}`, ReasonMissingField, "type"},
		{"timestamp string", `{"event_id":"` + testID + `","type":"track","timestamp":"now","context_kind":"user","context_key":"u1","event_key":"k"}`, ReasonMalformed, "timestamp"},
		{"fractional timestamp", `{"event_id":"` + testID + `","type":"track","timestamp":1.5,"context_kind":"user","context_key":"u1","event_key":"k"}`, ReasonMalformed, "timestamp"},
		{"missing timestamp", `{"event_id":"` + testID + `","type":"track","context_kind":"user","context_key":"u1","event_key":"k"}`, ReasonInvalidTimestamp, "timestamp"},
		{"missing context key", `{"event_id":"` + testID + `","type":"exposure","timestamp":1,"context_kind":"user","flag_key":"f","variation_key":"v"}`, ReasonMissingField, "context_key"},
		{"missing variation", `{"event_id":"` + testID + `","type":"exposure","timestamp":1,"context_kind":"user","context_key":"u","flag_key":"f"}`, ReasonMissingField, "variation_key"},
		{"negative flag version", `{"event_id":"` + testID + `","type":"exposure","timestamp":1,"context_kind":"user","context_key":"u","flag_key":"f","variation_key":"v","flag_version":-1}`, ReasonInvalidValue, "flag_version"},
		{"context key too long", `{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"` + long + `","event_key":"k"}`, ReasonTooLong, "context_key"},
		{"value not a number", `{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"u","event_key":"k","value":"12"}`, ReasonMalformed, "value"},
		{"nested property", `{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"u","event_key":"k","properties":{"a":{"b":1}}}`, ReasonInvalidValue, "properties.a"},
		{"property value too long", `{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"u","event_key":"k","properties":{"a":"` + strings.Repeat("y", 1025) + `"}}`, ReasonTooLong, "properties.a"},
		{"too many properties", `{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"u","event_key":"k","properties":{` + manyProps(51) + `}}`, ReasonTooManyProperties, "properties"},
		{"summary count zero", `{"event_id":"` + testID + `","type":"summary","timestamp":1,"start":1,"end":2,"counters":[{"flag_key":"f","variation_key":"on","count":0}]}`, ReasonInvalidValue, "counters.count"},
		{"summary window reversed", `{"event_id":"` + testID + `","type":"summary","timestamp":1,"start":5,"end":2,"counters":[]}`, ReasonInvalidTimestamp, "end"},
		{"sdk not an object", `{"event_id":"` + testID + `","type":"track","timestamp":1,"context_kind":"user","context_key":"u","event_key":"k","sdk":"go"}`, ReasonMalformed, "sdk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rej := decodeOne(t, tc.json)
			switch {
			case tc.reason == "" && rej != nil:
				t.Fatalf("rejected: %v", rej)
			case tc.reason != "" && rej == nil:
				t.Fatalf("accepted, want %s", tc.reason)
			case tc.reason != "" && (rej.Reason != tc.reason || rej.Field != tc.field):
				t.Fatalf("got %s on %q (%s), want %s on %q", rej.Reason, rej.Field, rej.Message, tc.reason, tc.field)
			}
		})
	}
}

func manyProps(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"p` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1`)
	}
	return b.String()
}

func TestBatchErrors(t *testing.T) {
	var d JSONDecoder
	noop := func(*Event, *Reject, func() []byte) {}
	if err := d.Decode([]byte(`{"a":1}`), 10, noop); err != ErrNotArray {
		t.Fatalf("object: got %v", err)
	}
	if err := d.Decode([]byte(`[1,2`), 10, noop); err == nil {
		t.Fatal("truncated JSON accepted")
	}
	if err := d.Decode([]byte(`[1,2,3]`), 2, noop); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("too many: got %v", err)
	}
}

func TestNormalizeClampsAndMerges(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixMilli()
	e := Event{Type: TypeTrack, Timestamp: now + int64(time.Hour/time.Millisecond)}
	Normalize(&e, now, DefaultSkew)
	if !e.Clamped || e.Timestamp != now || e.ClientTimestamp != now+int64(time.Hour/time.Millisecond) {
		t.Fatalf("future event not clamped: %+v", e)
	}
	ok := Event{Type: TypeTrack, Timestamp: now - 1000}
	Normalize(&ok, now, DefaultSkew)
	if ok.Clamped || ok.Timestamp != now-1000 {
		t.Fatalf("in-bound event changed: %+v", ok)
	}
	s := Event{Type: TypeSummary, Timestamp: now, Start: 1000, End: 61000, Counters: []Counter{
		{FlagKey: "f", VariationKey: "a", Count: 2}, {FlagKey: "f", VariationKey: "b", Count: 1}, {FlagKey: "f", VariationKey: "a", Count: 3},
	}}
	Normalize(&s, now, DefaultSkew)
	if !s.Clamped || s.End != now || s.Start != now-60000 {
		t.Fatalf("window not shifted: %+v", s)
	}
	want := []Counter{{FlagKey: "f", VariationKey: "a", Count: 5}, {FlagKey: "f", VariationKey: "b", Count: 1}}
	if !reflect.DeepEqual(s.Counters, want) {
		t.Fatalf("counters %+v, want %+v", s.Counters, want)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	id, _ := ParseUUID(testID)
	for _, r := range []Record{
		{EnvironmentID: "env", ReceivedAt: 5, Event: Event{ID: id, Type: TypeExposure, Timestamp: 3, ClientTimestamp: 9, Clamped: true, ContextKind: "user", ContextKey: "u", SDKName: "go", SDKVersion: "1", FlagKey: "f", VariationKey: "v", FlagVersion: 7, Reason: "r", RuleID: "x", ExperimentKey: "e"}},
		{EnvironmentID: "env", Event: Event{ID: id, Type: TypeTrack, Timestamp: 3, ClientTimestamp: 3, ContextKind: "user", ContextKey: "u", EventKey: "k", Value: -1.25, HasValue: true, Properties: []Property{{Key: "a", Kind: PropString, Str: "s"}, {Key: "b", Kind: PropNumber, Num: 2.5}, {Key: "c", Kind: PropBool, Bool: true}}}},
		{EnvironmentID: "env", Event: Event{ID: id, Type: TypeSummary, Timestamp: 3, ClientTimestamp: 3, Start: 1, End: 2, Counters: []Counter{{FlagKey: "f", VariationKey: "", FlagVersion: 1, Count: 9}}}},
	} {
		b := AppendRecord(nil, &r)
		var got Record
		if err := DecodeRecord(b, &got); err != nil {
			t.Fatalf("%s: %v", r.Type, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", r.Type, got, r)
		}
		for i := 0; i < len(b); i++ {
			if err := DecodeRecord(b[:i], &got); err == nil {
				t.Fatalf("%s: truncated record (%d of %d bytes) decoded", r.Type, i, len(b))
			}
		}
	}
}

func TestUUID(t *testing.T) {
	id, ok := ParseUUID(strings.ToUpper(testID))
	if !ok || FormatUUID(id) != testID {
		t.Fatalf("got %v %s", ok, FormatUUID(id))
	}
}

// BenchmarkDecodeRecord measures the writer's per-event decode of a Kafka record.
func BenchmarkDecodeRecord(b *testing.B) {
	id, _ := ParseUUID(testID)
	rec := AppendRecord(nil, &Record{EnvironmentID: "env-1", ReceivedAt: 1, Event: Event{ID: id, Type: TypeExposure, Timestamp: 3,
		ContextKind: "user", ContextKey: "user-0001234", FlagKey: "checkout", VariationKey: "treatment", FlagVersion: 12, ExperimentKey: "exp-1"}})
	var in Interner
	var r Record
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeRecordInterned(rec, &r, &in); err != nil {
			b.Fatal(err)
		}
	}
}
