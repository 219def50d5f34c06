package jsclient

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/internal/nodemodules"
	"github.com/intake-dev/intake/internal/testenv"
)

// The JavaScript side, in the order it is hashed. upload.mjs is part of the
// install so that node resolves its import of tus-js-client from the
// node_modules next to it.
//
//go:embed package.json package-lock.json upload.mjs
var files embed.FS

var spec = nodemodules.Spec{
	Name:      "jsclient",
	Files:     files,
	FileNames: []string{"package.json", "package-lock.json", "upload.mjs"},
	MinNode:   minNodeMajor,
}

const (
	// DefaultTimeout bounds one upload when Options.Timeout is zero.
	DefaultTimeout = 2 * time.Minute
	// minNodeMajor is tus-js-client's engines requirement.
	minNodeMajor = 18
)

var install = sync.OnceValues(spec.Install)

// Install makes sure tus-js-client is installed, running npm ci at most once
// per test binary, and returns the directory holding upload.mjs and its
// node_modules. When node or npm is missing t is skipped, or fails if
// CI=true; any other install failure fails t.
func Install(t testing.TB) (dir string) {
	t.Helper()
	return installed(t).Dir
}

func installed(t testing.TB) nodemodules.Installation {
	t.Helper()
	inst, err := install()
	if err != nil {
		if errors.Is(err, nodemodules.ErrNoNode) {
			testenv.Unavailable(t, err, "jsclient", "client", fmt.Sprintf("install Node.js %d or later with npm", minNodeMajor))
		}
		t.Fatalf("jsclient: %v", err)
	}
	return inst
}

// Options describe one upload by tus-js-client.
type Options struct {
	// Endpoint is the tus creation URL, e.g. http://127.0.0.1:8080/files/.
	Endpoint string
	// File is the path of the file to upload, handed to tus-js-client as
	// a fs.ReadStream.
	File string
	// ChunkSize is the most bytes one PATCH carries. Defaults to
	// tus-js-client's default: the whole rest of the file in one PATCH.
	ChunkSize int
	// ParallelUploads above 1 splits the file into that many partial
	// uploads sent at once and concatenated by a final upload (the
	// concatenation extension). Defaults to 1, one plain upload.
	ParallelUploads int
	// Metadata is sent as Upload-Metadata (of the final upload, when
	// parallel).
	Metadata map[string]string
	// Headers are added to every request.
	Headers map[string]string
	// Timeout bounds the whole run of node. Defaults to DefaultTimeout.
	Timeout time.Duration
}

// Result is what tus-js-client reported for a finished upload.
type Result struct {
	// URL is the upload URL (the final upload's, when parallel).
	URL string
	// Retries holds the message of every error tus-js-client retried
	// after, in order; a retry means the server answered 5xx, 409 or 423,
	// or the connection failed.
	Retries []string
}

// ClientError is a failed upload: tus-js-client called onError.
type ClientError struct {
	// Message is the error's message as tus-js-client built it; for an
	// HTTP error it quotes the status and the response body.
	Message string
	// Retries as in Result.
	Retries []string
}

func (e *ClientError) Error() string { return "tus-js-client: " + e.Message }

// Upload uploads opts.File with tus-js-client and returns what it reported;
// t fails unless the upload succeeded.
func Upload(t testing.TB, opts Options) Result {
	t.Helper()
	res, err := TryUpload(t, opts)
	if err != nil {
		t.Fatalf("jsclient: upload of %s to %s: %v", opts.File, opts.Endpoint, err)
	}
	return res
}

// TryUpload is Upload for uploads that may fail: it returns a *ClientError
// when tus-js-client gave up. Anything else going wrong (node crashing,
// the timeout, garbled output) fails t.
func TryUpload(t testing.TB, opts Options) (Result, error) {
	t.Helper()
	inst := installed(t)
	if opts.Endpoint == "" || opts.File == "" {
		t.Fatal("jsclient: Options need Endpoint and File")
	}
	file, err := filepath.Abs(opts.File)
	if err != nil {
		t.Fatal(err)
	}
	input, err := json.Marshal(map[string]any{
		"endpoint":        opts.Endpoint,
		"file":            file,
		"chunkSize":       opts.ChunkSize,
		"parallelUploads": opts.ParallelUploads,
		"metadata":        opts.Metadata,
		"headers":         opts.Headers,
	})
	if err != nil {
		t.Fatal(err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}

	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, inst.Node, filepath.Join(inst.Dir, "upload.mjs"))
	cmd.Dir = inst.Dir
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Kill closes node's end of the pipes; this bounds the wait for them
	// should node ever start children that inherit them.
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("jsclient: upload.mjs not done after %s (killed); stdout: %q; stderr:\n%s", timeout, stdout.Bytes(), stderr.Bytes())
	}

	var out struct {
		URL     string   `json:"url"`
		Error   *string  `json:"error"`
		Retries []string `json:"retries"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("jsclient: upload.mjs: %v, stdout is not its JSON line (%v): %q; stderr:\n%s", runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	var exit *exec.ExitError
	switch {
	case runErr == nil && out.Error == nil && out.URL != "":
		return Result{URL: out.URL, Retries: out.Retries}, nil
	case errors.As(runErr, &exit) && exit.ExitCode() == 1 && out.Error != nil:
		return Result{Retries: out.Retries}, &ClientError{Message: *out.Error, Retries: out.Retries}
	}
	t.Fatalf("jsclient: upload.mjs: exit %v with stdout %q; stderr:\n%s", runErr, stdout.Bytes(), stderr.Bytes())
	return Result{}, nil
}
