package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// checkArrowStream walks the framing and flatbuffer metadata of an Arrow IPC stream before the
// Arrow library reads it. The library trusts the counts in the metadata (fields, nodes,
// buffers, body length) and allocates what they claim: fuzzing found a 4 KB body that made it
// allocate hundreds of gigabytes. Here every count is checked against the bytes actually
// present, and features the collector has no use for (dictionaries, buffer compression,
// tensors) are refused, so a hostile body costs at most its own size.
func checkArrowStream(b []byte) error {
	pos := 0
	for messages := 0; ; messages++ {
		if messages > 100000 {
			return errArrow("too many messages")
		}
		if pos == len(b) {
			return nil // a stream may end without the end-of-stream marker
		}
		if len(b)-pos < 4 {
			return errArrow("truncated message length")
		}
		n := binary.LittleEndian.Uint32(b[pos:])
		pos += 4
		if n == 0xFFFFFFFF {
			if len(b)-pos < 4 {
				return errArrow("truncated message length")
			}
			n = binary.LittleEndian.Uint32(b[pos:])
			pos += 4
		}
		if n == 0 {
			return nil // end of stream
		}
		if n > uint32(len(b)-pos) || n < 8 {
			return errArrow("message metadata length %d beyond the body", n)
		}
		meta := b[pos : pos+int(n)]
		pos += int(n)
		bodyLen, err := checkMessage(meta, messages == 0)
		if err != nil {
			return err
		}
		if bodyLen < 0 || bodyLen > int64(len(b)-pos) {
			return errArrow("message body length %d beyond the request body", bodyLen)
		}
		pos += int(bodyLen)
	}
}

// ErrArrowStream wraps every problem checkArrowStream finds.
var ErrArrowStream = errors.New("arrow stream")

func errArrow(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrArrowStream, fmt.Sprintf(format, args...))
}

// Message header types (Message.fbs).
const (
	headerSchema      = 1
	headerRecordBatch = 3
)

func checkMessage(buf []byte, first bool) (int64, error) {
	root, ok := rootTable(buf)
	if !ok {
		return 0, errArrow("invalid message metadata")
	}
	// Message: version 0, header_type 1, header 2, bodyLength 3, custom_metadata 4.
	htype, ok := root.u8(1)
	if !ok {
		return 0, errArrow("invalid message header type")
	}
	header, ok := root.table(2)
	if !ok {
		return 0, errArrow("message without header")
	}
	body, ok := root.i64(3)
	if !ok {
		return 0, errArrow("invalid body length")
	}
	if err := root.checkKeyValues(4); err != nil {
		return 0, err
	}
	switch {
	case first && htype != headerSchema:
		return 0, errArrow("stream must start with a schema")
	case !first && htype == headerSchema:
		return 0, errArrow("unexpected second schema")
	case htype == headerSchema:
		return body, checkSchema(header)
	case htype == headerRecordBatch:
		return body, checkRecordBatch(header, body)
	}
	return 0, errArrow("unsupported message type %d (dictionaries and tensors are not accepted)", htype)
}

func checkSchema(t fbTable) error {
	// Schema: endianness 0, fields 1, custom_metadata 2, features 3.
	if _, _, ok := t.vector(3, 8); !ok {
		return errArrow("invalid schema features")
	}
	if err := t.checkKeyValues(2); err != nil {
		return err
	}
	return checkFields(t, 1, 0)
}

func checkFields(t fbTable, slot, depth int) error {
	if depth > 8 {
		return errArrow("schema nested too deeply")
	}
	start, n, ok := t.vector(slot, 4)
	if !ok || n > 256 {
		return errArrow("invalid schema fields")
	}
	for i := 0; i < n; i++ {
		f, ok := t.tableAt(start + 4*i)
		if !ok {
			return errArrow("invalid schema field")
		}
		// Field: name 0, nullable 1, type_type 2, type 3, dictionary 4, children 5, custom_metadata 6.
		if _, _, ok := f.vector(0, 1); !ok {
			return errArrow("invalid field name")
		}
		if f.has(4) {
			return errArrow("dictionary-encoded fields are not accepted")
		}
		if tt, ok := f.u8(2); !ok || !allowedTypes[tt] {
			return errArrow("field type %d is not accepted", tt)
		}
		if err := f.checkKeyValues(6); err != nil {
			return err
		}
		if err := checkFields(f, 5, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func checkRecordBatch(t fbTable, bodyLen int64) error {
	// RecordBatch: length 0, nodes 1 (struct FieldNode, 16 bytes), buffers 2 (struct Buffer,
	// 16 bytes), compression 3, variadicBufferCounts 4.
	length, ok := t.i64(0)
	if !ok || length < 0 || length > 1<<24 {
		return errArrow("invalid record batch length")
	}
	if t.has(3) {
		return errArrow("compressed record batches are not accepted (use Content-Encoding: gzip)")
	}
	if _, n, ok := t.vector(1, 16); !ok || n > 4096 {
		return errArrow("invalid record batch nodes")
	}
	start, n, ok := t.vector(2, 16)
	if !ok || n > 16384 {
		return errArrow("invalid record batch buffers")
	}
	for i := 0; i < n; i++ {
		off := int64(binary.LittleEndian.Uint64(t.buf[start+16*i:]))
		size := int64(binary.LittleEndian.Uint64(t.buf[start+16*i+8:]))
		if off < 0 || size < 0 || off > bodyLen || size > bodyLen-off {
			return errArrow("record batch buffer outside the body")
		}
	}
	if _, _, ok := t.vector(4, 8); !ok {
		return errArrow("invalid variadic buffer counts")
	}
	return nil
}

// allowedTypes are the Arrow type ids (Schema.fbs) a stream may use: what the event schema
// needs and a few harmless scalars. Null 1, Int 2, FloatingPoint 3, Binary 4, Utf8 5, Bool 6,
// Date 8, Timestamp 10, List 12, Struct 13, FixedSizeBinary 15.
var allowedTypes = map[uint8]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 8: true, 10: true, 12: true, 13: true, 15: true}

// fbTable is a bounds-checked view of one flatbuffer table.
type fbTable struct {
	buf    []byte
	pos    int // table start
	vtable int // vtable start
	vlen   int // vtable length in bytes
}

func rootTable(buf []byte) (fbTable, bool) {
	if len(buf) < 4 {
		return fbTable{}, false
	}
	return tableAtOffset(buf, 0)
}

// tableAtOffset follows the uoffset stored at off to a table.
func tableAtOffset(buf []byte, off int) (fbTable, bool) {
	if off < 0 || off+4 > len(buf) {
		return fbTable{}, false
	}
	pos := off + int(binary.LittleEndian.Uint32(buf[off:]))
	if pos < 0 || pos+4 > len(buf) {
		return fbTable{}, false
	}
	vt := pos - int(int32(binary.LittleEndian.Uint32(buf[pos:])))
	if vt < 0 || vt+4 > len(buf) {
		return fbTable{}, false
	}
	vlen := int(binary.LittleEndian.Uint16(buf[vt:]))
	if vlen < 4 || vt+vlen > len(buf) {
		return fbTable{}, false
	}
	return fbTable{buf: buf, pos: pos, vtable: vt, vlen: vlen}, true
}

func (t fbTable) tableAt(off int) (fbTable, bool) { return tableAtOffset(t.buf, off) }

// field returns the absolute position of a field (0 when absent) after checking that size
// bytes fit.
func (t fbTable) field(slot, size int) (int, bool) {
	vo := 4 + 2*slot
	if vo >= t.vlen { // as flatbuffers reads it: a slot past the vtable's end is absent
		return 0, true
	}
	if t.vtable+vo+2 > len(t.buf) {
		return 0, false
	}
	rel := int(binary.LittleEndian.Uint16(t.buf[t.vtable+vo:]))
	if rel == 0 {
		return 0, true
	}
	p := t.pos + rel
	if p+size > len(t.buf) {
		return 0, false
	}
	return p, true
}

func (t fbTable) has(slot int) bool {
	p, ok := t.field(slot, 0)
	return !ok || p != 0
}

func (t fbTable) u8(slot int) (uint8, bool) {
	p, ok := t.field(slot, 1)
	if !ok || p == 0 {
		return 0, ok
	}
	return t.buf[p], true
}

func (t fbTable) i64(slot int) (int64, bool) {
	p, ok := t.field(slot, 8)
	if !ok || p == 0 {
		return 0, ok
	}
	return int64(binary.LittleEndian.Uint64(t.buf[p:])), true
}

func (t fbTable) table(slot int) (fbTable, bool) {
	p, ok := t.field(slot, 4)
	if !ok || p == 0 {
		return fbTable{}, false
	}
	return t.tableAt(p)
}

// vector returns the start and length of a vector field whose elements are elem bytes, after
// checking that all of it lies inside the buffer. An absent vector is empty.
func (t fbTable) vector(slot, elem int) (start, n int, ok bool) {
	p, ok := t.field(slot, 4)
	if !ok {
		return 0, 0, false
	}
	if p == 0 {
		return 0, 0, true
	}
	v := p + int(binary.LittleEndian.Uint32(t.buf[p:]))
	if v < 0 || v+4 > len(t.buf) {
		return 0, 0, false
	}
	n64 := uint64(binary.LittleEndian.Uint32(t.buf[v:]))
	if n64*uint64(elem) > uint64(len(t.buf)-v-4) {
		return 0, 0, false
	}
	return v + 4, int(n64), true
}

// checkKeyValues checks a vector of KeyValue tables (key 0, value 1: strings).
func (t fbTable) checkKeyValues(slot int) error {
	start, n, ok := t.vector(slot, 4)
	if !ok {
		return errArrow("invalid custom metadata")
	}
	for i := 0; i < n; i++ {
		kv, ok := t.tableAt(start + 4*i)
		if !ok {
			return errArrow("invalid custom metadata entry")
		}
		if _, _, ok := kv.vector(0, 1); !ok {
			return errArrow("invalid custom metadata key")
		}
		if _, _, ok := kv.vector(1, 1); !ok {
			return errArrow("invalid custom metadata value")
		}
	}
	return nil
}
