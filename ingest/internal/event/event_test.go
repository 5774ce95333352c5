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
		// counters is required (events.schema.json) but may be empty: a window without
		// evaluations. Without it the summary would be accepted and store nothing.
		{"summary without counters", `{"event_id":"` + testID + `","type":"summary","timestamp":1,"start":1,"end":2}`, ReasonMissingField, "counters"},
		{"summary with null counters", `{"event_id":"` + testID + `","type":"summary","timestamp":1,"start":1,"end":2,"counters":null}`, ReasonMissingField, "counters"},
		{"summary with empty counters", `{"event_id":"` + testID + `","type":"summary","timestamp":1,"start":1,"end":2,"counters":[]}`, "", ""},
		{"summary counter without count", `{"event_id":"` + testID + `","type":"summary","timestamp":1,"start":1,"end":2,"counters":[{"flag_key":"f","variation_key":"on"}]}`, ReasonInvalidValue, "counters.count"},
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
	Normalize(&e, now, 0, DefaultSkew)
	if !e.Clamped || e.Timestamp != now || e.ClientTimestamp != now+int64(time.Hour/time.Millisecond) {
		t.Fatalf("future event not clamped: %+v", e)
	}
	ok := Event{Type: TypeTrack, Timestamp: now - 1000}
	Normalize(&ok, now, 0, DefaultSkew)
	if ok.Clamped || ok.Timestamp != now-1000 {
		t.Fatalf("in-bound event changed: %+v", ok)
	}
	s := Event{Type: TypeSummary, Timestamp: now, Start: 1000, End: 61000, Counters: []Counter{
		{FlagKey: "f", VariationKey: "a", Count: 2}, {FlagKey: "f", VariationKey: "b", Count: 1}, {FlagKey: "f", VariationKey: "a", Count: 3},
	}}
	Normalize(&s, now, 0, DefaultSkew)
	if !s.Clamped || s.End != now || s.Start != now-60000 {
		t.Fatalf("window not shifted: %+v", s)
	}
	want := []Counter{{FlagKey: "f", VariationKey: "a", Count: 5}, {FlagKey: "f", VariationKey: "b", Count: 1}}
	if !reflect.DeepEqual(s.Counters, want) {
		t.Fatalf("counters %+v, want %+v", s.Counters, want)
	}
	// A window that ends in the bound but starts before it starts at the bound, as does a
	// shifted window longer than the bound: window_start is a partition key.
	lo := now - DefaultSkew.Past.Milliseconds()
	for _, w := range []Event{
		{Type: TypeSummary, Timestamp: now, Start: now - 400*24*3600*1000, End: now - 1000},
		{Type: TypeSummary, Timestamp: now, Start: 1, End: now + 24*3600*1000},
	} {
		Normalize(&w, now, 0, DefaultSkew)
		if !w.Clamped || w.Start != lo || w.End > now {
			t.Fatalf("window starting before the skew bound kept: start %d (bound %d), end %d, clamped %v", w.Start, lo, w.End, w.Clamped)
		}
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

func TestClockOffset(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixMilli()
	minute := time.Minute.Milliseconds()
	for _, tc := range []struct {
		name   string
		sentAt int64
		want   int64
	}{
		{"not said", 0, 0},
		{"network time", now - 800, 0},
		{"within the bound, ahead", now + minute, 0},
		{"within the bound, behind", now - minute, 0},
		{"an hour ahead", now + 60*minute, -60 * minute},
		{"two minutes behind", now - 2*minute, 2 * minute},
	} {
		if got := ClockOffset(now, tc.sentAt, DefaultSkew); got != tc.want {
			t.Errorf("%s: offset %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A phone whose clock is an hour ahead sends a batch with a track buffered ten minutes earlier
// and a summary; the events get their true times, not the time of receipt.
func TestNormalizeCorrectsTheSendersClock(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixMilli()
	hour, minute := time.Hour.Milliseconds(), time.Minute.Milliseconds()
	offset := ClockOffset(now, now+hour+150, DefaultSkew) // its clock read 1 h 150 ms ahead of ours
	e := Event{Type: TypeTrack, Timestamp: now + hour - 10*minute}
	Normalize(&e, now, offset, DefaultSkew)
	if e.Clamped || e.Timestamp != now-10*minute-150 || e.ClientTimestamp != now+hour-10*minute {
		t.Fatalf("track: %+v", e)
	}
	s := Event{Type: TypeSummary, Timestamp: now + hour, Start: now + hour - minute, End: now + hour}
	Normalize(&s, now, offset, DefaultSkew)
	if s.Clamped || s.End != now-150 || s.Start != now-minute-150 {
		t.Fatalf("summary: %+v", s)
	}
	// Corrected and still out of bounds (sent from a clock a year behind, and eight days old
	// by its own account): clamped as before.
	old := Event{Type: TypeTrack, Timestamp: now - 365*24*hour - 8*24*hour}
	Normalize(&old, now, ClockOffset(now, now-365*24*hour, DefaultSkew), DefaultSkew)
	if !old.Clamped || old.Timestamp != now {
		t.Fatalf("eight-day-old event: %+v", old)
	}
}

// The same event sent twice by a clock an hour ahead, the first delivery received 10 s before
// midnight and the retry 20 s after: both are stored at the same time (to the network's
// jitter), on the same day, so the retry collapses with the first (deduplication is by event
// id within a day). Clamped to the time of receipt, as without a send time, they would not.
func TestARetryAcrossMidnightKeepsItsDay(t *testing.T) {
	midnight := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).UnixMilli()
	hour := time.Hour.Milliseconds()
	eventTime := midnight - 2*time.Minute.Milliseconds() + hour // by the sender's clock
	day := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.DateOnly) }
	var days, clampedDays []string
	for _, delivery := range []struct{ received, transit int64 }{{midnight - 10_000, 120}, {midnight + 20_000, 480}} {
		e := Event{Type: TypeTrack, Timestamp: eventTime}
		sentAt := delivery.received - delivery.transit + hour
		Normalize(&e, delivery.received, ClockOffset(delivery.received, sentAt, DefaultSkew), DefaultSkew)
		days = append(days, day(e.Timestamp))
		c := Event{Type: TypeTrack, Timestamp: eventTime}
		Normalize(&c, delivery.received, 0, DefaultSkew)
		clampedDays = append(clampedDays, day(c.Timestamp))
	}
	if days[0] != days[1] || days[0] != "2026-11-25" {
		t.Fatalf("corrected deliveries stored on %v", days)
	}
	if clampedDays[0] == clampedDays[1] {
		t.Fatalf("the clamped deliveries were meant to straddle midnight: %v", clampedDays)
	}
}
