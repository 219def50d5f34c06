package main

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
)

// The pattern is the XOR of two pseudo-random blocks whose sizes are
// coprime, so it repeats only every blockA*blockB bytes (about 1 TiB): a
// chunk stored at the wrong offset, twice, or from another upload does not
// match. Generating it is two SIMD XORs per byte range, cheap next to the
// network copy, and the client never holds more than the two blocks.
const (
	blockA = 1 << 20
	blockB = 1<<20 - 1
)

// pattern is the content of one upload: size bytes determined by seed.
type pattern struct {
	size int64
	a, b []byte
}

func newPattern(seed uint64, size int64) *pattern {
	rng := rand.New(rand.NewChaCha8(seedBytes(seed)))
	p := &pattern{size: size, a: make([]byte, blockA), b: make([]byte, blockB)}
	fill(rng, p.a)
	fill(rng, p.b)
	return p
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

func fill(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// ReadAt fills p with the pattern from off, as an io.ReaderAt, so that
// io.NewSectionReader gives each PATCH its own body.
func (p *pattern) ReadAt(dst []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("pattern: negative offset")
	}
	if off >= p.size {
		return 0, io.EOF
	}
	n := len(dst)
	if rest := p.size - off; int64(n) > rest {
		n = int(rest)
	}
	done := 0
	for done < n {
		pos := off + int64(done)
		ia, ib := int(pos%blockA), int(pos%blockB)
		m := min(n-done, blockA-ia, blockB-ib)
		subtle.XORBytes(dst[done:done+m], p.a[ia:ia+m], p.b[ib:ib+m])
		done += m
	}
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

// reader returns the whole pattern as a stream.
func (p *pattern) reader() io.Reader { return io.NewSectionReader(p, 0, p.size) }

// errMismatch marks stored bytes that differ from what was sent.
var errMismatch = errors.New("stored bytes differ from the uploaded ones")

// verify reads r to its end and compares it with the pattern: same bytes,
// same length. It streams, holding one buffer of each side.
func (p *pattern) verify(r io.Reader) error {
	got := make([]byte, 1<<20)
	want := make([]byte, len(got))
	var off int64
	for {
		n, err := io.ReadFull(r, got)
		if n > 0 {
			if off+int64(n) > p.size {
				return fmt.Errorf("%w: more than the %d bytes uploaded", errMismatch, p.size)
			}
			if _, werr := p.ReadAt(want[:n], off); werr != nil && werr != io.EOF {
				return werr
			}
			if !bytes.Equal(got[:n], want[:n]) {
				i := firstDiff(got[:n], want[:n])
				return fmt.Errorf("%w: first difference at byte %d", errMismatch, off+int64(i))
			}
			off += int64(n)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if off != p.size {
				return fmt.Errorf("%w: %d bytes stored, %d uploaded", errMismatch, off, p.size)
			}
			return nil
		case err != nil:
			return fmt.Errorf("error reading the download at byte %d: %w", off, err)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
