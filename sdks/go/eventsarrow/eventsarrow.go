// Package eventsarrow is the Go SDK's optional high-volume event sender: it encodes SDK events
// (sdks/spec/events.schema.json) as an Apache Arrow IPC stream and POSTs them to the ingest
// collector with Content-Type application/vnd.apache.arrow.stream. It lives in its own module
// so that the core SDK does not pull Arrow into every application.
//
// The stream's schema is Schema; every column is optional (looked up by name) and nullable, so
// senders in other languages may omit the columns they never fill. A property map travels as a
// JSON object text because Arrow has no flat union type that every language writes easily.
package eventsarrow

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ContentType is the media type of an Arrow IPC stream.
const ContentType = "application/vnd.apache.arrow.stream"

// CounterType is the element type of the counters column.
var CounterType = arrow.StructOf(
	arrow.Field{Name: "flag_key", Type: arrow.BinaryTypes.String},
	arrow.Field{Name: "variation_key", Type: arrow.BinaryTypes.String, Nullable: true},
	arrow.Field{Name: "flag_version", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	arrow.Field{Name: "count", Type: arrow.PrimitiveTypes.Int64},
)

// Column names of Schema, in order.
const (
	ColEventID = iota
	ColType
	ColTimestamp
	ColContextKind
	ColContextKey
	ColSDKName
	ColSDKVersion
	ColFlagKey
	ColVariationKey
	ColFlagVersion
	ColReason
	ColRuleID
	ColExperimentKey
	ColEventKey
	ColValue
	ColProperties
	ColStart
	ColEnd
	ColCounters
)

// Schema is the Arrow schema of an event stream. event_id holds the UUID's 16 bytes (a
// collector also accepts the canonical text form in a utf8 column); timestamp, start and end are
// ms since the epoch; properties is a JSON object text.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "event_id", Type: &arrow.FixedSizeBinaryType{ByteWidth: 16}},
	{Name: "type", Type: arrow.BinaryTypes.String},
	{Name: "timestamp", Type: arrow.PrimitiveTypes.Int64},
	{Name: "context_kind", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "context_key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "sdk_name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "sdk_version", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "flag_key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "variation_key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "flag_version", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "reason", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "rule_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "experiment_key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "event_key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "properties", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "start", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "end", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "counters", Type: arrow.ListOf(CounterType), Nullable: true},
}, nil)

// Event is one SDK event. Fields that do not belong to Type are left empty.
type Event struct {
	ID          [16]byte
	Type        string // "exposure", "track" or "summary"
	Timestamp   int64  // ms since the epoch
	ContextKind string
	ContextKey  string
	SDKName     string
	SDKVersion  string

	FlagKey       string
	VariationKey  string
	FlagVersion   int64
	Reason        string
	RuleID        string
	ExperimentKey string

	EventKey   string
	Value      *float64
	Properties map[string]any // string, float64 (or any Go number) or bool values

	Start    int64
	End      int64
	Counters []Counter
}

// Counter is one flag x variation count of a summary event.
type Counter struct {
	FlagKey      string
	VariationKey string
	FlagVersion  int64
	Count        int64
}

// Encoder appends events to Arrow record batches and writes them as one IPC stream.
type Encoder struct {
	mem memory.Allocator
	b   *array.RecordBuilder
}

// NewEncoder returns an encoder using mem (the Go allocator when nil).
func NewEncoder(mem memory.Allocator) *Encoder {
	if mem == nil {
		mem = memory.NewGoAllocator()
	}
	return &Encoder{mem: mem, b: array.NewRecordBuilder(mem, Schema)}
}

// Release frees the encoder's builders.
func (e *Encoder) Release() { e.b.Release() }

// Append adds one event to the current record batch.
func (e *Encoder) Append(ev *Event) error {
	f := e.b.Fields()
	f[ColEventID].(*array.FixedSizeBinaryBuilder).Append(ev.ID[:])
	f[ColType].(*array.StringBuilder).Append(ev.Type)
	f[ColTimestamp].(*array.Int64Builder).Append(ev.Timestamp)
	appendStr(f[ColContextKind], ev.ContextKind)
	appendStr(f[ColContextKey], ev.ContextKey)
	appendStr(f[ColSDKName], ev.SDKName)
	appendStr(f[ColSDKVersion], ev.SDKVersion)
	appendStr(f[ColFlagKey], ev.FlagKey)
	appendStr(f[ColVariationKey], ev.VariationKey)
	if ev.Type == "exposure" {
		f[ColFlagVersion].(*array.Int64Builder).Append(ev.FlagVersion)
	} else {
		f[ColFlagVersion].AppendNull()
	}
	appendStr(f[ColReason], ev.Reason)
	appendStr(f[ColRuleID], ev.RuleID)
	appendStr(f[ColExperimentKey], ev.ExperimentKey)
	appendStr(f[ColEventKey], ev.EventKey)
	if ev.Value != nil {
		f[ColValue].(*array.Float64Builder).Append(*ev.Value)
	} else {
		f[ColValue].AppendNull()
	}
	if len(ev.Properties) > 0 {
		js, err := json.Marshal(ev.Properties)
		if err != nil {
			return fmt.Errorf("eventsarrow: properties: %w", err)
		}
		f[ColProperties].(*array.StringBuilder).Append(string(js))
	} else {
		f[ColProperties].AppendNull()
	}
	if ev.Type == "summary" {
		f[ColStart].(*array.Int64Builder).Append(ev.Start)
		f[ColEnd].(*array.Int64Builder).Append(ev.End)
		lb := f[ColCounters].(*array.ListBuilder)
		lb.Append(true)
		sb := lb.ValueBuilder().(*array.StructBuilder)
		for _, c := range ev.Counters {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append(c.FlagKey)
			sb.FieldBuilder(1).(*array.StringBuilder).Append(c.VariationKey)
			sb.FieldBuilder(2).(*array.Int64Builder).Append(c.FlagVersion)
			sb.FieldBuilder(3).(*array.Int64Builder).Append(c.Count)
		}
	} else {
		f[ColStart].AppendNull()
		f[ColEnd].AppendNull()
		f[ColCounters].AppendNull()
	}
	return nil
}

func appendStr(b array.Builder, s string) {
	if s == "" {
		b.AppendNull()
		return
	}
	b.(*array.StringBuilder).Append(s)
}

// Len is the number of events appended to the current record batch.
func (e *Encoder) Len() int { return e.b.Field(0).Len() }

// NewRecordBatch returns the events appended so far as a record batch and starts a new one.
// The caller releases it.
func (e *Encoder) NewRecordBatch() arrow.RecordBatch { return e.b.NewRecordBatch() }

// WriteStream writes events to w as one Arrow IPC stream of record batches of at most
// batchRows rows (all of them in one batch when batchRows <= 0).
func WriteStream(w io.Writer, events []Event, batchRows int) error {
	enc := NewEncoder(nil)
	defer enc.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(Schema), ipc.WithAllocator(enc.mem))
	flush := func() error {
		rec := enc.NewRecordBatch()
		defer rec.Release()
		return iw.Write(rec)
	}
	for i := range events {
		if err := enc.Append(&events[i]); err != nil {
			return err
		}
		if batchRows > 0 && enc.Len() >= batchRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if enc.Len() > 0 || len(events) == 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return iw.Close()
}
