package protocol

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func serveStub(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Wrap(h, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	return srv
}

// tusd sets read/write deadlines through http.ResponseController on every
// request, and a download must reach the client while it is being written.
func TestWriterStreamsAndReachesTheConnection(t *testing.T) {
	t.Parallel()
	firstRead := make(chan struct{})
	errs := make(chan error, 5)
	srv := serveStub(t, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			errs <- errors.New("the wrapper is not an http.Flusher")
		} else {
			errs <- nil
		}
		rc := http.NewResponseController(w)
		errs <- rc.SetReadDeadline(time.Now().Add(time.Minute))
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		io.WriteString(w, "first\n")
		errs <- rc.Flush()
		// Blocks until the client has the first line: nothing is buffered.
		select {
		case <-firstRead:
		case <-time.After(10 * time.Second):
			errs <- io.ErrNoProgress
			return
		}
		io.WriteString(w, "second\n")
	})

	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line: got %q, %v", line, err)
	}
	close(firstRead)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "second\n" {
		t.Fatalf("rest: got %q, %v", rest, err)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("ResponseController through the wrapper: %v", err)
		}
	}
}

// tusd's download path reports a failed copy by writing an error after the
// 200 and part of the body. The client must see a broken response, not the
// error text appended to its file.
func TestErrorAfterBodyStartedAbortsTheResponse(t *testing.T) {
	t.Parallel()
	srv := serveStub(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "partial content")
		w.(http.Flusher).Flush()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "ERR_INTERNAL_SERVER_ERROR: read /data/x: input/output error\n")
	})
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil {
		t.Error("truncated download read without error")
	}
	if strings.Contains(string(body), "ERR_") {
		t.Errorf("error text appended to the download: %q", body)
	}
}

// Errors that are not plain text (a hook's own JSON, say) pass untouched.
func TestNonTextErrorsPassThrough(t *testing.T) {
	t.Parallel()
	const body = `{"custom":true}`
	srv := serveStub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, body)
	})
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusForbidden || string(got) != body {
		t.Errorf("got %d %q; want 403 %q", res.StatusCode, got, body)
	}
}
