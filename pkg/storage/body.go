package storage

import (
	"hash"
	"io"
	"sync"
)

// sourceReader is the request body as the backend reads it. It
//   - remembers the body's own error, so that a backend error caused by the
//     body is told apart from one of the backend itself;
//   - stops a limited body (a token's max_size on a deferred upload) with
//     over once it passes max;
//   - feeds every byte handed to the backend to hash (the streaming SHA-256)
//     from the same buffer — a tee, never a copy;
//   - moves the body in large pieces when the backend copies with io.Copy.
type sourceReader struct {
	r   io.Reader
	err error
	// limited bodies may yield max bytes; one with more fails with over
	// after max bytes.
	limited bool
	max     int64
	read    int64 // bytes handed to the backend
	over    error
	// hash, when set, is fed every byte handed to the backend.
	hash hash.Hash
	// flushBehind, when > 0, starts the kernel's writeback of a file
	// destination every flushBehind bytes (see startWriteback): set when
	// the PATCH ends with an fsync.
	flushBehind int64
}

// Read hashes inline: backends that read in small pieces (tusd's S3 store
// fills parts through io.LimitReader) get no pipelining.
func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.readBody(p)
	if s.hash != nil && n > 0 {
		s.hash.Write(p[:n])
	}
	return n, err
}

// readBody reads without hashing.
func (s *sourceReader) readBody(p []byte) (int, error) {
	if s.limited {
		if s.read >= s.max {
			return 0, s.probe()
		}
		if rest := s.max - s.read; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// probe looks for a byte past max: none means the body simply ended there.
func (s *sourceReader) probe() error {
	var one [1]byte
	for {
		n, err := s.r.Read(one[:])
		if n > 0 {
			s.err = s.over
			return s.over
		}
		if err != nil {
			if err != io.EOF {
				s.err = err
			}
			return err
		}
	}
}

// copyBufferSize is the piece WriteTo moves bytes in. io.Copy's default of
// 32 KiB costs a read and a write system call per 32 KiB; profiles of large
// PATCHes were almost all system calls.
const copyBufferSize = 512 << 10

// hashDepth is how many pieces may wait for the digest while the next ones
// are read and written.
const hashDepth = 3

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// WriteTo lets a backend's io.Copy(dst, body) move the body in large
// pieces. With a digest, hashing runs beside reading and writing on the
// same buffers (a piece is reused only once hashed), so it costs no copy
// and, on a second core, little time.
func (s *sourceReader) WriteTo(w io.Writer) (int64, error) {
	if s.hash == nil {
		bp := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(bp)
		return s.pump(w, func() *[]byte { return bp }, func(*[]byte, int) {})
	}

	free := make(chan *[]byte, hashDepth)
	for range hashDepth {
		free <- copyBuffers.Get().(*[]byte)
	}
	type piece struct {
		b *[]byte
		n int
	}
	queue := make(chan piece, hashDepth)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for p := range queue {
			s.hash.Write((*p.b)[:p.n])
			free <- p.b
		}
	}()
	n, err := s.pump(w, func() *[]byte { return <-free }, func(b *[]byte, n int) {
		if n > 0 {
			queue <- piece{b, n}
		} else {
			free <- b
		}
	})
	close(queue)
	<-hashed
	for range hashDepth {
		copyBuffers.Put(<-free)
	}
	return n, err
}

// pump reads pieces into buffers from get and writes them to w, handing
// each buffer to done (with the bytes it holds) after its write.
func (s *sourceReader) pump(w io.Writer, get func() *[]byte, done func(*[]byte, int)) (int64, error) {
	var written, unflushed int64
	for {
		b := get()
		// One read takes what the connection has, up to the buffer: a fast
		// client fills it, a slow one's bytes are written as they come.
		n, rerr := s.readBody(*b)
		if n > 0 {
			m, werr := w.Write((*b)[:n])
			written += int64(m)
			if werr != nil {
				done(b, 0)
				return written, werr
			}
			if unflushed += int64(m); s.flushBehind > 0 && unflushed >= s.flushBehind {
				startWriteback(w)
				unflushed = 0
			}
		}
		done(b, n)
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
