package main_test

// End-to-end tests of the intake binary as a process: what an operator does
// (start it, upload, kill -9 it, start it again, inspect with the CLI).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/server"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "intake-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "intake")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building intake:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	// log is the process's output. The process writes it while it runs:
	// read it only once the process has exited (kill it first).
	log *bytes.Buffer
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs `intake serve` with args and waits until /readyz answers 200.
func start(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	return startEnv(t, addr, nil, args...)
}

// startEnv is start with extra environment variables for the process.
func startEnv(t *testing.T, addr string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, base: "http://" + addr, log: &bytes.Buffer{}}
	p.cmd = exec.Command(binary, append([]string{"serve", "--listen", addr}, args...)...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("intake did not become ready; log:\n%s", p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill() // SIGKILL: no chance to clean up
		_ = p.cmd.Wait()
	}
}

func (p *proc) terminate() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Errorf("intake exited with %v after SIGINT; log:\n%s", err, p.log)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		p.t.Fatalf("intake did not stop after SIGINT; log:\n%s", p.log)
	}
}

// metric reads one series of the process's /metrics, named as the text
// format writes it, e.g. `name{label="value"}`; ok is false when the
// process does not export it.
func (p *proc) metric(t *testing.T, series string) (value float64, ok bool) {
	t.Helper()
	status, body, err := get(p.base + "/metrics")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d, %v", p.base, status, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if name, v, found := strings.Cut(line, " "); found && name == series {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics of %s: %q: %v", p.base, line, err)
			}
			return f, true
		}
	}
	return 0, false
}

func cli(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("intake %v: %v\n%s", args, err, out)
	}
	return out
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func download(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKill9ThenResume is the acceptance scenario: 100 MiB in three PATCHes,
// kill -9 after the second, restart on the same data, resume byte-exact; the
// catalog's offset equals the store's throughout, and `intake uploads ls`
// shows the upload complete.
func TestKill9ThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			args := []string{"--data-dir", dataDir}
			if backend == "postgres" {
				args = append(args, "--database-url", pgtest.URL(t))
			}
			addr := freePort(t)
			p := start(t, addr, args...)
			ctx := context.Background()
			c := &client.Client{Endpoint: p.base + "/files/"}
			const size = 100 << 20
			data := random(t, size)
			url, _, err := c.Create(ctx, client.Upload{Size: size, Metadata: map[string]string{"filename": "big.bin"}}, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			id := path.Base(url)
			cuts := []int64{0, 33 << 20, 67<<20 + 5, size}
			for i := 0; i < 2; i++ {
				if _, err := c.Patch(ctx, url, cuts[i], bytes.NewReader(data[cuts[i]:cuts[i+1]]), cuts[i+1]-cuts[i], -1); err != nil {
					t.Fatal(err)
				}
			}
			p.kill()

			p = start(t, addr, args...)
			info, err := c.Head(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if info.Offset != cuts[2] {
				t.Fatalf("offset after kill -9 = %d; want %d", info.Offset, cuts[2])
			}
			var v server.UploadView
			if err := json.Unmarshal(cli(t, append([]string{"uploads", "show", id, "--json"}, args...)...), &v); err != nil {
				t.Fatal(err)
			}
			if v.Offset != cuts[2] || v.State != "receiving" {
				t.Fatalf("catalog after kill -9 = %+v; want receiving at %d", v, cuts[2])
			}
			if _, err := c.Patch(ctx, url, cuts[2], bytes.NewReader(data[cuts[2]:]), size-cuts[2], -1); err != nil {
				t.Fatal(err)
			}
			if got := download(t, url); !bytes.Equal(got, data) {
				t.Fatal("downloaded bytes differ")
			}
			p.terminate()

			var list []server.UploadView
			if err := json.Unmarshal(cli(t, append([]string{"uploads", "ls", "--json"}, args...)...), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].ID != id || list[0].State != "complete" || list[0].Offset != size {
				t.Fatalf("uploads ls = %+v; want one complete upload of %d bytes", list, size)
			}
			st, err := os.Stat(filepath.Join(dataDir, "uploads", id))
			if err != nil || st.Size() != list[0].Offset {
				t.Fatalf("store holds %v bytes (%v); catalog says %d", st.Size(), err, list[0].Offset)
			}
		})
	}
}

// TestKill9MidPatch: a process killed while a PATCH streams loses nothing
// the store holds: after restart HEAD reports the bytes on disk, the catalog
// catches up, and the upload completes byte-exact.
func TestKill9MidPatch(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	dataDir := t.TempDir()
	addr := freePort(t)
	p := start(t, addr, "--data-dir", dataDir)
	ctx := context.Background()
	c := &client.Client{Endpoint: p.base + "/files/"}
	const size = 8 << 20
	data := random(t, size)
	url, _, err := c.Create(ctx, client.Upload{Size: size}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := path.Base(url)
	pr, pw := io.Pipe()
	go func() {
		_, _ = c.Patch(ctx, url, 0, pr, size, -1)
	}()
	if _, err := pw.Write(data[:3<<20]); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dataDir, "uploads", id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.Stat(file)
		if err == nil && st.Size() >= 3<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bytes never reached the disk")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill()
	pw.CloseWithError(io.ErrClosedPipe)

	p = start(t, addr, "--data-dir", dataDir)
	info, err := c.Head(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(file)
	if info.Offset != st.Size() {
		t.Fatalf("HEAD offset %d; disk holds %d", info.Offset, st.Size())
	}
	var v server.UploadView
	if err := json.Unmarshal(cli(t, "uploads", "show", id, "--json", "--data-dir", dataDir), &v); err != nil {
		t.Fatal(err)
	}
	if v.Offset != info.Offset {
		t.Fatalf("catalog offset %d after HEAD; store %d", v.Offset, info.Offset)
	}
	if err := c.Resume(ctx, url, bytes.NewReader(data), size, 1<<20, 0); err != nil {
		t.Fatal(err)
	}
	if got := download(t, url); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}
}

// TestSignals: SIGINT drains and exits 0 while nothing is in flight; with a
// request that will not finish (a download the client stops reading), the
// first SIGINT waits for it and a second one exits at once.
func TestSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	dataDir := t.TempDir()
	addr := freePort(t)
	p := start(t, addr, "--data-dir", dataDir, "--file-sync=false")
	ctx := context.Background()
	c := &client.Client{Endpoint: p.base + "/files/"}
	const size = 64 << 20
	url, err := c.Upload(ctx, bytes.NewReader(make([]byte, size)), size, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.terminate() // idle: a clean exit

	p = start(t, addr, "--data-dir", dataDir, "--shutdown-timeout", "1m")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Ask for the 64 MiB file and read only its first bytes: the handler
	// blocks writing once the socket buffers are full.
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", url[len(p.base):], addr)
	if _, err := io.ReadFull(conn, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Fatalf("exited (%v) after the first SIGINT while a request was in flight; log:\n%s", err, p.log)
	case <-time.After(500 * time.Millisecond):
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("after the second SIGINT: %v; want exit status 1", err)
		}
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-exited
		t.Fatalf("still running 5s after the second SIGINT; log:\n%s", p.log)
	}
}
