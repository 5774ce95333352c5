package app

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaProxy stands between a relay and the real broker so a test can cut Kafka off while the
// relay runs. A plain TCP proxy is not enough for that: a Kafka client uses its seed address
// only to fetch metadata, then connects to the address the broker advertises (the real broker
// here), which a proxy on another port never sees. So this proxy reads the protocol's frames
// and rewrites the broker addresses in Metadata responses to its own: the relay then knows the
// broker only as the proxy, and every one of its connections goes through it. It assumes a
// single-broker cluster (the local stack's); every advertised broker becomes the proxy.
//
// Cut closes every connection and refuses new ones (accepted, then closed at once); Restore
// lets them through again. A gate, when set, sees every request before it is forwarded and may
// hold it (the test decides what the relay gets to read and when).
type kafkaProxy struct {
	addr   string
	broker string
	host   string
	port   int32

	mu        sync.Mutex
	cut       bool
	conns     map[net.Conn]struct{}
	gate      func(key int16, req []byte)
	rewritten int
}

func newKafkaProxy(t testing.TB, broker string) *kafkaProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	p := &kafkaProxy{addr: ln.Addr().String(), broker: broker, host: host, port: int32(n), conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if cut {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", broker)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			if p.cut { // cut while dialling
				p.mu.Unlock()
				in.Close()
				out.Close()
				continue
			}
			p.conns[in], p.conns[out] = struct{}{}, struct{}{}
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(in, out)
				p.mu.Lock()
				delete(p.conns, in)
				delete(p.conns, out)
				p.mu.Unlock()
			}()
		}
	}()
	return p
}

// Cut drops every connection and refuses new ones until Restore.
func (p *kafkaProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *kafkaProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// SetGate installs fn (nil: none) to see, and possibly hold, every request before it is
// forwarded: key is its API key, req the request frame (header and body, without the size).
func (p *kafkaProxy) SetGate(fn func(key int16, req []byte)) {
	p.mu.Lock()
	p.gate = fn
	p.mu.Unlock()
}

// Rewritten counts the Metadata responses whose broker addresses were replaced by the proxy's.
func (p *kafkaProxy) Rewritten() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rewritten
}

// serve relays one connection's requests and responses until either side closes.
func (p *kafkaProxy) serve(in, out net.Conn) {
	defer in.Close()
	defer out.Close()
	var mu sync.Mutex
	pending := map[int32][2]int16{} // correlation id → API key and version
	done := make(chan struct{})
	go func() { // requests
		defer close(done)
		defer out.Close()
		for {
			frame, err := readFrame(in)
			if err != nil || len(frame) < 8 {
				return
			}
			key, version := int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
			mu.Lock()
			pending[int32(binary.BigEndian.Uint32(frame[4:]))] = [2]int16{key, version}
			mu.Unlock()
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			if gate != nil {
				gate(key, frame)
			}
			if writeFrame(out, frame) != nil {
				return
			}
		}
	}()
	for {
		frame, err := readFrame(out)
		if err != nil || len(frame) < 4 {
			break
		}
		corr := int32(binary.BigEndian.Uint32(frame))
		mu.Lock()
		req := pending[corr]
		delete(pending, corr)
		mu.Unlock()
		if req[0] == kmsg.Metadata.Int16() {
			if frame, err = p.rewriteMetadata(frame, req[1]); err != nil {
				break
			}
		}
		if writeFrame(in, frame) != nil {
			break
		}
	}
	in.Close()
	<-done
}

// rewriteMetadata replaces every broker's address in a Metadata response frame by the proxy's.
func (p *kafkaProxy) rewriteMetadata(frame []byte, version int16) ([]byte, error) {
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(version)
	head := 4 // correlation id, then (flexible versions) tagged fields
	if resp.IsFlexible() {
		n, err := skipTags(frame[head:])
		if err != nil {
			return nil, err
		}
		head += n
	}
	if err := resp.ReadFrom(frame[head:]); err != nil {
		return nil, fmt.Errorf("metadata response v%d: %w", version, err)
	}
	for i := range resp.Brokers {
		resp.Brokers[i].Host, resp.Brokers[i].Port = p.host, p.port
	}
	p.mu.Lock()
	p.rewritten++
	p.mu.Unlock()
	return resp.AppendTo(append([]byte(nil), frame[:head]...)), nil
}

// listOffsetsTimestamps returns the timestamps a ListOffsets request frame asks for (-1: the
// end offsets, -2: the start offsets).
func listOffsetsTimestamps(frame []byte) ([]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
	body := frame[8:]
	if len(body) < 2 {
		return nil, io.ErrUnexpectedEOF
	}
	if n := int16(binary.BigEndian.Uint16(body)); n > 0 { // the client id, a nullable string
		body = body[n:]
	}
	body = body[2:]
	if req.IsFlexible() {
		n, err := skipTags(body)
		if err != nil {
			return nil, err
		}
		body = body[n:]
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	var out []int64
	for _, t := range req.Topics {
		for _, pt := range t.Partitions {
			out = append(out, pt.Timestamp)
		}
	}
	return out, nil
}

// skipTags returns the length of a tagged-fields section at the start of b.
func skipTags(b []byte) (int, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, errors.New("bad tagged fields")
	}
	off := n
	for range count {
		if _, n = binary.Uvarint(b[off:]); n <= 0 {
			return 0, errors.New("bad tag")
		}
		off += n
		size, n := binary.Uvarint(b[off:])
		if n <= 0 || uint64(len(b)-off-n) < size {
			return 0, errors.New("bad tag size")
		}
		off += n + int(size)
	}
	return off, nil
}

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 512<<20 {
		return nil, errors.New("frame too large")
	}
	frame := make([]byte, n)
	_, err := io.ReadFull(r, frame)
	return frame, err
}

func writeFrame(w io.Writer, frame []byte) error {
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(frame)))
	_, err := (&net.Buffers{size[:], frame}).WriteTo(w)
	return err
}

// probeHold is a gate set on the proxy while Kafka comes back: the relay's fetches wait, and
// so does its probe (ListOffsets asking for end offsets, timestamp -1) from the second one on,
// so the relay has seen Kafka answer but has read nothing of what the log now holds.
type probeHold struct {
	// second is closed when the relay sends its second probe.
	second chan struct{}
	// release lets every held request through (idempotent; also run at the test's cleanup).
	release func()

	mu            sync.Mutex
	probes, reads int
	releaseCh     chan struct{}
}

// holdFetchesAndSecondProbe sets a probeHold on p.
func holdFetchesAndSecondProbe(t *testing.T, p *kafkaProxy) *probeHold {
	h := &probeHold{second: make(chan struct{}), releaseCh: make(chan struct{})}
	var once sync.Once
	h.release = func() { once.Do(func() { close(h.releaseCh) }) }
	t.Cleanup(h.release)
	p.SetGate(func(key int16, req []byte) {
		switch key {
		case kmsg.Fetch.Int16():
			h.mu.Lock()
			h.reads++
			h.mu.Unlock()
			<-h.releaseCh
		case kmsg.ListOffsets.Int16():
			ts, err := listOffsetsTimestamps(req)
			if err != nil {
				t.Errorf("ListOffsets request: %v", err)
				return
			}
			if !slices.Contains(ts, -1) {
				return // not the probe's (which lists end offsets)
			}
			h.mu.Lock()
			h.probes++
			n := h.probes
			h.mu.Unlock()
			if n == 2 {
				close(h.second)
			}
			if n >= 2 {
				<-h.releaseCh
			}
		}
	})
	return h
}

// fetches is how many fetches of the relay the gate has held.
func (h *probeHold) fetches() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads
}
