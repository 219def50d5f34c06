package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// size crosses several boundaries of both blocks and is odd.
const testSize = 3*blockA + 12345

func TestPatternReadAtIsConsistent(t *testing.T) {
	t.Parallel()
	p := newPattern(42, testSize)
	whole := make([]byte, testSize)
	if n, err := p.ReadAt(whole, 0); n != testSize || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(whole) = %d, %v; want %d", n, err, testSize)
	}
	// Pieces at odd offsets, spanning the ends of both blocks, must be
	// the same bytes as the whole: a PATCH's body is such a piece.
	for _, c := range []struct{ off, n int64 }{
		{0, 1}, {blockB - 3, 10}, {blockA - 5, 10}, {blockA - 1, 2*blockA + 7}, {testSize - 9, 9}, {12345, 8 << 20},
	} {
		buf := make([]byte, c.n)
		n, err := p.ReadAt(buf, c.off)
		want := whole[c.off:min(c.off+c.n, testSize)]
		if int64(n) != int64(len(want)) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d bytes; want %d", c.n, c.off, n, len(want))
		}
		if int64(n) < c.n && err != io.EOF {
			t.Errorf("ReadAt past the end at %d: err = %v; want io.EOF", c.off, err)
		}
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("ReadAt(%d bytes at %d) differs from the same range of the whole", c.n, c.off)
		}
	}
	if n, err := p.ReadAt(make([]byte, 4), testSize); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
	// Streamed in odd reads, it is the same again.
	streamed, err := io.ReadAll(io.LimitReader(oddReader{p.reader()}, testSize+1))
	if err != nil || !bytes.Equal(streamed, whole) {
		t.Errorf("reader() gave %d bytes (%v), different from ReadAt", len(streamed), err)
	}
}

// TestPatternDoesNotRepeat guards what verification relies on: a block
// stored at the wrong offset, or bytes of another upload, do not match.
func TestPatternDoesNotRepeat(t *testing.T) {
	t.Parallel()
	p := newPattern(1, testSize)
	at := func(q *pattern, off, n int64) []byte {
		b := make([]byte, n)
		q.ReadAt(b, off)
		return b
	}
	for _, shift := range []int64{8, blockB, blockA, 2 * blockA} {
		if bytes.Equal(at(p, 0, 4096), at(p, shift, 4096)) {
			t.Errorf("the pattern repeats after %d bytes", shift)
		}
	}
	if bytes.Equal(at(p, 0, 4096), at(newPattern(2, testSize), 0, 4096)) {
		t.Error("seeds 1 and 2 give the same bytes")
	}
	// verify regenerates the pattern from its seed: the same seed must
	// give the same bytes, whatever the size.
	if !bytes.Equal(at(p, 0, 10), at(newPattern(1, 10), 0, 10)) {
		t.Error("the same seed gives different bytes for another size")
	}
}

func TestPatternVerify(t *testing.T) {
	t.Parallel()
	p := newPattern(7, testSize)
	good := make([]byte, testSize)
	p.ReadAt(good, 0)
	if err := p.verify(oddReader{bytes.NewReader(good)}); err != nil {
		t.Fatalf("verify(the same bytes) = %v; want nil", err)
	}

	flipped := bytes.Clone(good)
	flipped[blockA+17] ^= 1
	// Two chunks swapped, as a store writing at wrong offsets would.
	swapped := bytes.Clone(good)
	copy(swapped[:8<<10], good[1<<20:1<<20+8<<10])
	copy(swapped[1<<20:], good[:8<<10])
	other := make([]byte, testSize)
	newPattern(8, testSize).ReadAt(other, 0)
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"one bit flipped", flipped, "first difference at byte 1048593"},
		{"chunks swapped", swapped, "first difference at byte 0"},
		{"another upload", other, "first difference at byte 0"},
		{"truncated", good[:testSize-1], "bytes stored"},
		{"empty", nil, "0 bytes stored"},
		{"one byte extra", append(bytes.Clone(good), 0), "more than"},
	} {
		err := p.verify(bytes.NewReader(tc.body))
		if !errors.Is(err, errMismatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: verify = %v; want errMismatch saying %q", tc.name, err, tc.want)
		}
	}

	boom := errors.New("connection reset")
	if err := p.verify(io.MultiReader(bytes.NewReader(good[:100]), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("verify of a failing body = %v; want the read error", err)
	}
}

// oddReader returns short reads of odd sizes, as a network body does.
type oddReader struct{ r io.Reader }

func (o oddReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 7777)]) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
