// Package export streams raw exposures and tracks out of ClickHouse as Apache Parquet or Arrow
// IPC, for data scientists who want the rows in pandas or polars. Rows are read from ClickHouse
// one at a time and written in record batches (Parquet: one row group per batch), so memory
// stays bounded by the batch size whatever the export's size.
package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/uuid"

	chstore "github.com/switchyard-io/switchyard/ingest/internal/store/clickhouse"
)

// Format is an export file format.
type Format string

// Export formats.
const (
	FormatParquet Format = "parquet"
	FormatArrow   Format = "arrow"
)

// ContentType is the media type of the format.
func (f Format) ContentType() string {
	if f == FormatArrow {
		return "application/vnd.apache.arrow.stream"
	}
	return "application/vnd.apache.parquet"
}

// BatchRows is the number of rows per record batch (and Parquet row group).
const BatchRows = 65536

var tsMS = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
var tsS = &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}

// ExposureSchema is the Arrow schema of exported exposures.
var ExposureSchema = arrow.NewSchema([]arrow.Field{
	{Name: "event_id", Type: arrow.BinaryTypes.String},
	{Name: "timestamp", Type: tsMS},
	{Name: "received_at", Type: tsS},
	{Name: "clamped", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "context_kind", Type: arrow.BinaryTypes.String},
	{Name: "context_key", Type: arrow.BinaryTypes.String},
	{Name: "flag_key", Type: arrow.BinaryTypes.String},
	{Name: "variation_key", Type: arrow.BinaryTypes.String},
	{Name: "flag_version", Type: arrow.PrimitiveTypes.Int64},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "rule_id", Type: arrow.BinaryTypes.String},
	{Name: "experiment_key", Type: arrow.BinaryTypes.String},
	{Name: "sdk_name", Type: arrow.BinaryTypes.String},
	{Name: "sdk_version", Type: arrow.BinaryTypes.String},
}, nil)

// TrackSchema is the Arrow schema of exported track events; properties is a JSON object text
// with the original value types (polars and pandas parse it with one call).
var TrackSchema = arrow.NewSchema([]arrow.Field{
	{Name: "event_id", Type: arrow.BinaryTypes.String},
	{Name: "timestamp", Type: tsMS},
	{Name: "received_at", Type: tsS},
	{Name: "clamped", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "context_kind", Type: arrow.BinaryTypes.String},
	{Name: "context_key", Type: arrow.BinaryTypes.String},
	{Name: "event_key", Type: arrow.BinaryTypes.String},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "properties", Type: arrow.BinaryTypes.String},
	{Name: "sdk_name", Type: arrow.BinaryTypes.String},
	{Name: "sdk_version", Type: arrow.BinaryTypes.String},
}, nil)

// sink writes record batches in one format.
type sink interface {
	write(rec arrow.RecordBatch) error
	close() error
}

type ipcSink struct{ w *ipc.Writer }

func (s ipcSink) write(rec arrow.RecordBatch) error { return s.w.Write(rec) }
func (s ipcSink) close() error                      { return s.w.Close() }

type parquetSink struct{ w *pqarrow.FileWriter }

func (s parquetSink) write(rec arrow.RecordBatch) error { return s.w.Write(rec) }
func (s parquetSink) close() error                      { return s.w.Close() }

func newSink(format Format, schema *arrow.Schema, w io.Writer, mem memory.Allocator) (sink, error) {
	switch format {
	case FormatArrow:
		return ipcSink{ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(mem))}, nil
	case FormatParquet:
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithAllocator(mem))
		fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem), pqarrow.WithStoreSchema()))
		if err != nil {
			return nil, err
		}
		return parquetSink{fw}, nil
	}
	return nil, fmt.Errorf("unknown export format %q (parquet, arrow)", format)
}

// ParseFormat validates a format name ("" means Parquet).
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", FormatParquet:
		return FormatParquet, nil
	case FormatArrow:
		return FormatArrow, nil
	}
	return "", fmt.Errorf("unknown export format %q (parquet, arrow)", s)
}

// batches builds record batches of one schema and writes one to the sink every BatchRows rows.
type batches struct {
	b *array.RecordBuilder
	s sink
	n int
}

func newBatches(format Format, schema *arrow.Schema, w io.Writer) (*batches, error) {
	mem := memory.NewGoAllocator()
	s, err := newSink(format, schema, w, mem)
	if err != nil {
		return nil, err
	}
	return &batches{b: array.NewRecordBuilder(mem, schema), s: s}, nil
}

func (x *batches) flush() error {
	rec := x.b.NewRecordBatch()
	defer rec.Release()
	return x.s.write(rec)
}

// envelope appends the columns every event starts with (event_id to context_key) and returns
// the builders of the rest.
func (x *batches) envelope(id uuid.UUID, tsMillis uint64, receivedAt time.Time, clamped uint8, kind, key string) []array.Builder {
	fl := x.b.Fields()
	fl[0].(*array.StringBuilder).Append(id.String())
	fl[1].(*array.TimestampBuilder).Append(arrow.Timestamp(tsMillis))
	fl[2].(*array.TimestampBuilder).Append(arrow.Timestamp(receivedAt.Unix()))
	fl[3].(*array.BooleanBuilder).Append(clamped == 1)
	fl[4].(*array.StringBuilder).Append(kind)
	fl[5].(*array.StringBuilder).Append(key)
	return fl[6:]
}

// rowDone counts a complete row and writes the batch when it is full.
func (x *batches) rowDone() error {
	x.n++
	if x.n%BatchRows == 0 {
		return x.flush()
	}
	return nil
}

// finish writes the last partial batch (an empty one when there were no rows, so the file has
// its schema), closes the sink and releases the builder; it returns the row count.
func (x *batches) finish(err error) (int, error) {
	defer x.b.Release()
	if err != nil {
		return x.n, err
	}
	if x.n%BatchRows != 0 || x.n == 0 {
		if err := x.flush(); err != nil {
			return x.n, err
		}
	}
	return x.n, x.s.close()
}

// Exposures writes the exposures selected by f to w in format, and returns the row count.
func Exposures(ctx context.Context, conn driver.Conn, f chstore.ExportFilter, format Format, w io.Writer) (int, error) {
	x, err := newBatches(format, ExposureSchema, w)
	if err != nil {
		return 0, err
	}
	return x.finish(chstore.ExportExposures(ctx, conn, f, func(r *chstore.ExposureRow) error {
		fl := x.envelope(r.EventID, r.TimestampMS, r.ReceivedAt, r.Clamped, r.ContextKind, r.ContextKey)
		fl[0].(*array.StringBuilder).Append(r.FlagKey)
		fl[1].(*array.StringBuilder).Append(r.VariationKey)
		fl[2].(*array.Int64Builder).Append(int64(r.FlagVersion))
		fl[3].(*array.StringBuilder).Append(r.Reason)
		fl[4].(*array.StringBuilder).Append(r.RuleID)
		fl[5].(*array.StringBuilder).Append(r.ExperimentKey)
		fl[6].(*array.StringBuilder).Append(r.SDKName)
		fl[7].(*array.StringBuilder).Append(r.SDKVersion)
		return x.rowDone()
	}))
}

// Tracks writes the track events selected by f to w in format, and returns the row count.
func Tracks(ctx context.Context, conn driver.Conn, f chstore.ExportFilter, format Format, w io.Writer) (int, error) {
	x, err := newBatches(format, TrackSchema, w)
	if err != nil {
		return 0, err
	}
	props := map[string]any{}
	return x.finish(chstore.ExportTracks(ctx, conn, f, func(r *chstore.TrackRow) error {
		fl := x.envelope(r.EventID, r.TimestampMS, r.ReceivedAt, r.Clamped, r.ContextKind, r.ContextKey)
		fl[0].(*array.StringBuilder).Append(r.EventKey)
		if r.HasValue == 1 {
			fl[1].(*array.Float64Builder).Append(r.Value)
		} else {
			fl[1].AppendNull()
		}
		clear(props)
		for i, k := range r.PropKeys {
			props[k] = propertyValue(r.PropTypes[i], r.PropValues[i])
		}
		js, err := json.Marshal(props)
		if err != nil {
			return err
		}
		fl[2].(*array.StringBuilder).Append(string(js))
		fl[3].(*array.StringBuilder).Append(r.SDKName)
		fl[4].(*array.StringBuilder).Append(r.SDKVersion)
		return x.rowDone()
	}))
}

// propertyValue turns a stored property (type, text) back into its JSON value.
func propertyValue(typ, text string) any {
	switch typ {
	case "number":
		return json.Number(text)
	case "bool":
		return text == "true"
	}
	return text
}
