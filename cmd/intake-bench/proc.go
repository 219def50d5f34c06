package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds a server's start until it answers.
	readyTimeout = 30 * time.Second
	// stopTimeout is how long a server gets after SIGTERM before it is
	// killed; intake lets in-flight requests finish, which at the end of a
	// run are none.
	stopTimeout = 15 * time.Second
)

// serverSpec says how to run one server under test.
type serverSpec struct {
	// Name identifies the server in results: tusd, intake,
	// intake-nosync.
	Name string
	Bin  string
	// Args builds the command line for a listen address host:port.
	Args func(addr string) []string
	// Env is the whole environment of the process: nothing of the
	// harness's leaks in (INTAKE_*, AWS_PROFILE and the like would change
	// what is measured).
	Env []string
	// ReadyPath is polled until it answers 2xx; ReadyMethod defaults to GET.
	ReadyPath, ReadyMethod string
}

// server is one running server process.
type server struct {
	spec     serverSpec
	addr     string
	endpoint string // http://addr/files/
	cmd      *exec.Cmd
	out      *tail
	done     chan struct{}
	err      error // cmd.Wait's result, set before done closes
	stopOnce sync.Once
}

// startServer runs spec on a free loopback port and waits until it is
// ready. A port taken between looking and binding is retried.
func startServer(ctx context.Context, spec serverSpec) (*server, error) {
	for attempt := 1; ; attempt++ {
		s, err := tryStart(ctx, spec)
		if err == nil {
			return s, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
}

func tryStart(ctx context.Context, spec serverSpec) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &server{spec: spec, addr: addr, endpoint: "http://" + addr + "/files/", out: &tail{max: 64 << 10}, done: make(chan struct{})}
	s.cmd = exec.Command(spec.Bin, spec.Args(addr)...)
	s.cmd.Env = spec.Env
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// The kernel kills the server with the harness if the harness dies
	// without stopping it (SIGKILL, a panic).
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not become ready: %w; command: %s; output:\n%s", spec.Name, err, s.command(), s.out)
	}
	return s, nil
}

func (s *server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	method := s.spec.ReadyMethod
	if method == "" {
		method = http.MethodGet
	}
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, method, "http://"+s.addr+s.spec.ReadyPath, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Tus-Resumable", "1.0.0")
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("%s %s: status %d", method, s.spec.ReadyPath, resp.StatusCode)
		}
		last = err
		select {
		case <-s.done:
			return fmt.Errorf("exited (%v)", s.err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// alive reports an error when the server has exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited (%v); output:\n%s", s.spec.Name, s.err, s.out)
	default:
		return nil
	}
}

// stop sends SIGTERM, waits stopTimeout, then kills. It is safe to call
// more than once and from a deferred cleanup after ctrl-C.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

func (s *server) command() string { return strings.Join(s.cmd.Args, " ") }

// resetPeakRSS makes the kernel forget the process's peak resident set
// (VmHWM), so that the next peakRSS covers only what ran in between.
func (s *server) resetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
}

// peakRSS is the process's peak resident set in bytes since its start or
// the last resetPeakRSS.
func (s *server) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last max bytes written to it: a server's output, for
// error messages.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	// Trimming only past twice max keeps a chatty server from costing a
	// 64 KiB copy per log line in the harness, which is also the client.
	if len(w.buf) > 2*w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf[max(0, len(w.buf)-w.max):])
}
