package storage

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestSourceReaderWriteTo: the large-buffer copy path moves every byte,
// whatever sizes the body's reads return, and records a body error so that
// WriteChunk can tell it from a backend error.
func TestSourceReaderWriteTo(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 200000) // 3.2 MB: several buffers
	for name, r := range map[string]io.Reader{
		"whole":       bytes.NewReader(data),
		"one byte":    iotest.OneByteReader(bytes.NewReader(data[:70000])),
		"half":        iotest.HalfReader(bytes.NewReader(data)),
		"eof at once": iotest.DataErrReader(bytes.NewReader(data)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var dst bytes.Buffer
			src := &sourceReader{r: r}
			n, err := io.Copy(&dst, src)
			want := data
			if name == "one byte" {
				want = data[:70000]
			}
			if err != nil || n != int64(len(want)) || !bytes.Equal(dst.Bytes(), want) || src.err != nil {
				t.Fatalf("copied %d bytes, err %v, body err %v; want %d bytes, no error", n, err, src.err, len(want))
			}
		})
	}

	t.Run("body error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("client went away")
		src := &sourceReader{r: io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(boom))}
		var dst bytes.Buffer
		n, err := io.Copy(&dst, src)
		if n != 1000 || !errors.Is(err, boom) || !errors.Is(src.err, boom) || !bytes.Equal(dst.Bytes(), data[:1000]) {
			t.Fatalf("copied %d, err %v, recorded %v; want the 1000 bytes before the error written and the error recorded", n, err, src.err)
		}
	})

	t.Run("write error", func(t *testing.T) {
		t.Parallel()
		full := errors.New("disk full")
		src := &sourceReader{r: bytes.NewReader(data)}
		_, err := src.WriteTo(failingWriter{full})
		if !errors.Is(err, full) || src.err != nil {
			t.Fatalf("err %v, body err %v; want the write error and no body error", err, src.err)
		}
	})
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
