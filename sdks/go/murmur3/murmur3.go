// Package murmur3 implements the 32-bit x86 variant of Austin Appleby's MurmurHash3, the hash
// every Switchyard SDK uses to bucket contexts into rollouts (sdks/spec/EVALUATION.md,
// "Bucketing"). It is a dependency-free transcription of the public-domain reference
// (MurmurHash3_x86_32), plus a Prefix type that hashes a fixed prefix (a rollout's "salt.") once,
// so that bucketing a context hashes only its key, without allocating.
package murmur3

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

const (
	c1 = 0xcc9e2d51
	c2 = 0x1b873593
)

// Sum32 returns MurmurHash3_x86_32 of data with the given seed.
func Sum32(data []byte, seed uint32) uint32 {
	return NewPrefix("", seed).Sum(data)
}

// SumString returns MurmurHash3_x86_32 of the UTF-8 bytes of s with the given seed.
func SumString(s string, seed uint32) uint32 {
	return NewPrefix("", seed).SumString(s)
}

// Sum32Concat returns MurmurHash3_x86_32 of the bytes of a followed by the bytes of b, without
// concatenating them: the result equals Sum32([]byte(a+b), seed).
func Sum32Concat(a, b string, seed uint32) uint32 {
	return NewPrefix(a, seed).SumString(b)
}

// Sum32ConcatBytes is Sum32Concat with b given as bytes.
func Sum32ConcatBytes(a string, b []byte, seed uint32) uint32 {
	return NewPrefix(a, seed).Sum(b)
}

// Prefix is the hash state after a fixed prefix: Sum and SumString continue from it. The zero
// Prefix is the empty prefix with seed 0. A Prefix is a small value, safe to copy and share.
type Prefix struct {
	h     uint32 // state after the prefix's whole 4-byte blocks
	carry uint32 // the prefix's 0-3 trailing bytes, little-endian
	nc    uint32 // how many trailing bytes
	n     uint32 // prefix length
}

// NewPrefix hashes the whole blocks of prefix with the given seed.
func NewPrefix(prefix string, seed uint32) Prefix {
	p := Prefix{h: seed, n: uint32(len(prefix))}
	b := bytesOf(prefix)
	for len(b) >= 4 {
		p.h = mixBlock(p.h, binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	for i, c := range b {
		p.carry |= uint32(c) << (8 * uint(i))
	}
	p.nc = uint32(len(b))
	return p
}

// SumString returns the hash of the prefix followed by s.
func (p Prefix) SumString(s string) uint32 { return p.Sum(bytesOf(s)) }

// Sum returns the hash of the prefix followed by b.
func (p Prefix) Sum(b []byte) uint32 {
	h, carry, nc := p.h, p.carry, p.nc
	total := p.n + uint32(len(b))
	if nc > 0 {
		// Complete the prefix's partial block with b's first bytes.
		for nc < 4 && len(b) > 0 {
			carry |= uint32(b[0]) << (8 * nc)
			nc++
			b = b[1:]
		}
		if nc == 4 {
			h = mixBlock(h, carry)
			carry, nc = 0, 0
		}
	}
	for len(b) >= 4 {
		h = mixBlock(h, binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	for _, c := range b {
		carry |= uint32(c) << (8 * nc)
		nc++
	}
	if nc > 0 {
		h ^= mixK(carry)
	}
	return finalize(h, total)
}

// bytesOf views a string's bytes without copying; the bytes are only read.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func mixK(k uint32) uint32 {
	k *= c1
	k = bits.RotateLeft32(k, 15)
	return k * c2
}

func mixBlock(h, k uint32) uint32 {
	h ^= mixK(k)
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

func finalize(h, length uint32) uint32 {
	h ^= length
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
