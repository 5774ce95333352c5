package collector

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/valyala/fastjson"

	"github.com/switchyard-io/switchyard/ingest/internal/event"
)

// ErrArrowSchema is returned by DecodeArrow when a known column has an unexpected type.
var ErrArrowSchema = errors.New("arrow stream: unexpected column type")

// DecodeArrow decodes an Arrow IPC stream of events (the schema of package
// sdks/go/eventsarrow; columns are found by name and may be missing) and calls fn for every
// row, like event.JSONDecoder.Decode. raw renders the row as wire JSON for the dead-letter topic.
func DecodeArrow(body []byte, maxEvents int, fn func(e *event.Event, rej *event.Reject, raw func() []byte)) (err error) {
	defer func() {
		// The IPC reader trusts buffer offsets in the stream; a corrupt stream can make array
		// accessors index out of range. Turn that into a malformed batch, not a crash.
		if p := recover(); p != nil {
			err = fmt.Errorf("arrow stream: corrupt batch: %v", p)
		}
	}()
	if err := checkArrowStream(body); err != nil {
		return err
	}
	rd, err := ipc.NewReader(bytes.NewReader(body), ipc.WithAllocator(memory.DefaultAllocator),
		ipc.WithMetadataSizeLimit(int64(len(body))), ipc.WithBodySizeLimit(int64(len(body))))
	if err != nil {
		return fmt.Errorf("arrow stream: %w", err)
	}
	defer rd.Release()
	var (
		e     event.Event
		total int
		props fastjson.Parser
		raw   []byte
	)
	for rd.Next() {
		rec := rd.RecordBatch()
		cols, err := bindColumns(rec)
		if err != nil {
			return err
		}
		n := int(rec.NumRows())
		total += n
		if maxEvents > 0 && total > maxEvents {
			return fmt.Errorf("%w: more than %d events", event.ErrBatchTooLarge, maxEvents)
		}
		for i := 0; i < n; i++ {
			e = event.Event{}
			rej := cols.row(i, &e, &props)
			fn(&e, rej, func() []byte {
				raw = event.AppendJSON(raw[:0], &e)
				return raw
			})
		}
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("arrow stream: %w", err)
	}
	return nil
}

type arrowCols struct {
	id                                                                  arrow.Array
	typ, ctxKind, ctxKey, sdkName, sdkVersion                           *array.String
	flagKey, variationKey, reason, ruleID, experimentKey, eventKey, pro *array.String
	ts, flagVersion, start, end                                         *array.Int64
	value                                                               *array.Float64
	counters                                                            *array.List
	cFlag, cVariation                                                   *array.String
	cVersion, cCount                                                    *array.Int64
}

func bindColumns(rec arrow.RecordBatch) (*arrowCols, error) {
	c := &arrowCols{}
	sc := rec.Schema()
	col := func(name string) arrow.Array {
		idx := sc.FieldIndices(name)
		if len(idx) == 0 {
			return nil
		}
		return rec.Column(idx[0])
	}
	var err error
	str := func(name string) *array.String {
		a := col(name)
		if a == nil {
			return nil
		}
		s, ok := a.(*array.String)
		if !ok && err == nil {
			err = fmt.Errorf("%w: %s is %s, want utf8", ErrArrowSchema, name, a.DataType())
		}
		return s
	}
	i64 := func(name string) *array.Int64 {
		a := col(name)
		if a == nil {
			return nil
		}
		s, ok := a.(*array.Int64)
		if !ok && err == nil {
			err = fmt.Errorf("%w: %s is %s, want int64", ErrArrowSchema, name, a.DataType())
		}
		return s
	}
	c.id = col("event_id")
	switch a := c.id.(type) {
	case nil, *array.String:
	case *array.FixedSizeBinary:
		if a.DataType().(*arrow.FixedSizeBinaryType).ByteWidth != 16 {
			return nil, fmt.Errorf("%w: event_id is %s, want fixed_size_binary[16] or utf8", ErrArrowSchema, a.DataType())
		}
	default:
		return nil, fmt.Errorf("%w: event_id is %s, want fixed_size_binary[16] or utf8", ErrArrowSchema, a.DataType())
	}
	c.typ, c.ctxKind, c.ctxKey = str("type"), str("context_kind"), str("context_key")
	c.sdkName, c.sdkVersion = str("sdk_name"), str("sdk_version")
	c.flagKey, c.variationKey, c.reason = str("flag_key"), str("variation_key"), str("reason")
	c.ruleID, c.experimentKey, c.eventKey, c.pro = str("rule_id"), str("experiment_key"), str("event_key"), str("properties")
	c.ts, c.flagVersion, c.start, c.end = i64("timestamp"), i64("flag_version"), i64("start"), i64("end")
	if a := col("value"); a != nil {
		v, ok := a.(*array.Float64)
		if !ok {
			return nil, fmt.Errorf("%w: value is %s, want float64", ErrArrowSchema, a.DataType())
		}
		c.value = v
	}
	if a := col("counters"); a != nil {
		l, ok := a.(*array.List)
		if !ok {
			return nil, fmt.Errorf("%w: counters is %s, want list<struct>", ErrArrowSchema, a.DataType())
		}
		st, ok := l.ListValues().(*array.Struct)
		if !ok {
			return nil, fmt.Errorf("%w: counters is %s, want list<struct>", ErrArrowSchema, a.DataType())
		}
		c.counters = l
		stt := st.DataType().(*arrow.StructType)
		field := func(name string) arrow.Array {
			if i, ok := stt.FieldIdx(name); ok {
				return st.Field(i)
			}
			return nil
		}
		var ok1, ok2, ok3, ok4 bool
		c.cFlag, ok1 = field("flag_key").(*array.String)
		c.cCount, ok2 = field("count").(*array.Int64)
		c.cVariation, ok3 = field("variation_key").(*array.String)
		c.cVersion, ok4 = field("flag_version").(*array.Int64)
		if !ok1 || !ok2 || (!ok3 && field("variation_key") != nil) || (!ok4 && field("flag_version") != nil) {
			return nil, fmt.Errorf("%w: counters is %s, want list<struct<flag_key: utf8, variation_key: utf8, flag_version: int64, count: int64>>", ErrArrowSchema, a.DataType())
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func sval(a *array.String, i int) string {
	if a == nil || a.IsNull(i) {
		return ""
	}
	return a.Value(i) // copied below by cloning the event's strings
}

func ival(a *array.Int64, i int) int64 {
	if a == nil || a.IsNull(i) {
		return 0
	}
	return a.Value(i)
}

func (c *arrowCols) row(i int, e *event.Event, props *fastjson.Parser) *event.Reject {
	switch a := c.id.(type) {
	case *array.FixedSizeBinary:
		if !a.IsNull(i) {
			copy(e.ID[:], a.Value(i))
		}
	case *array.String:
		if !a.IsNull(i) {
			id, ok := event.ParseUUID(a.Value(i))
			if !ok {
				return &event.Reject{Reason: event.ReasonInvalidEventID, Field: "event_id", Message: "not a UUID"}
			}
			e.ID = id
		}
	}
	typ := sval(c.typ, i)
	if typ == "" {
		return &event.Reject{Reason: event.ReasonMissingField, Field: "type", Message: "required"}
	}
	if e.Type = event.ParseType(typ); e.Type == 0 {
		return &event.Reject{Reason: event.ReasonUnknownType, Field: "type", Message: "must be exposure, track or summary"}
	}
	// Arrow strings alias the stream's buffers, which are reused for the next batch: clone.
	e.Timestamp = ival(c.ts, i)
	e.ContextKind = clone(sval(c.ctxKind, i))
	e.ContextKey = clone(sval(c.ctxKey, i))
	e.SDKName = clone(sval(c.sdkName, i))
	e.SDKVersion = clone(sval(c.sdkVersion, i))
	switch e.Type {
	case event.TypeExposure:
		e.FlagKey = clone(sval(c.flagKey, i))
		e.VariationKey = clone(sval(c.variationKey, i))
		e.FlagVersion = ival(c.flagVersion, i)
		e.Reason = clone(sval(c.reason, i))
		e.RuleID = clone(sval(c.ruleID, i))
		e.ExperimentKey = clone(sval(c.experimentKey, i))
	case event.TypeTrack:
		e.EventKey = clone(sval(c.eventKey, i))
		if c.value != nil && !c.value.IsNull(i) {
			e.Value, e.HasValue = c.value.Value(i), true
		}
		if c.pro != nil && !c.pro.IsNull(i) {
			if rej := event.ParseProperties(props, []byte(c.pro.Value(i)), e); rej != nil {
				return rej
			}
		}
	case event.TypeSummary:
		e.Start, e.End = ival(c.start, i), ival(c.end, i)
		if c.counters == nil || c.counters.IsNull(i) {
			return event.MissingCounters()
		}
		from, to := c.counters.ValueOffsets(i)
		if to-from > event.MaxCounters {
			return &event.Reject{Reason: event.ReasonTooManyCounters, Field: "counters", Message: fmt.Sprintf("%d counters, at most %d", to-from, event.MaxCounters)}
		}
		e.Counters = make([]event.Counter, 0, to-from)
		for j := int(from); j < int(to); j++ {
			e.Counters = append(e.Counters, event.Counter{
				FlagKey:      clone(sval(c.cFlag, j)),
				VariationKey: clone(sval(c.cVariation, j)),
				FlagVersion:  ival(c.cVersion, j),
				Count:        ival(c.cCount, j),
			})
		}
	}
	return nil
}

func clone(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}

// decodeArrow feeds an Arrow batch into b.
func decodeArrow(body []byte, maxEvents int, skew event.Skew, b *batch) error {
	return DecodeArrow(body, maxEvents, func(e *event.Event, rej *event.Reject, raw func() []byte) {
		b.add(e, rej, raw, skew)
	})
}
