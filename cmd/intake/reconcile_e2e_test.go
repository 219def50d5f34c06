package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/server"
)

// TestCrashBeforeFinalizeIsReconciled stops the process exactly between
// the store completing an upload and the catalog finalizing it (the
// test-only fault point INTAKE_TEST_FAULT=finished), then restarts it. With
// no request touching the upload, the reconciler's sweep finalizes it: the
// session is complete with the right digest and the download byte-exact.
func TestCrashBeforeFinalizeIsReconciled(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	dataDir := t.TempDir()
	addr := freePort(t)
	args := []string{"--data-dir", dataDir, "--reconcile-interval", "200ms"}

	crashing := startEnv(t, addr, []string{"INTAKE_TEST_FAULT=finished"}, args...)

	ctx := context.Background()
	c := &client.Client{Endpoint: crashing.base + "/files/"}
	data := random(t, 3<<20)
	url, _, err := c.Create(ctx, client.Upload{Size: int64(len(data)), Metadata: map[string]string{"filename": "x.bin"}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Patch(ctx, url, 0, bytes.NewReader(data), int64(len(data)), -1); err == nil {
		t.Fatal("the last PATCH succeeded; the fault point did not fire")
	}
	if err := crashing.cmd.Wait(); err == nil || crashing.cmd.ProcessState.ExitCode() != 86 {
		t.Fatalf("process ended with %v; want exit status 86 at the fault point; log:\n%s", err, crashing.log)
	}
	id := path.Base(url)
	if v := show(t, id, args); v.State != "receiving" {
		t.Fatalf("after the crash the session is %q; want receiving (stored, not finalized)", v.State)
	}

	p := start(t, addr, args...)
	deadline := time.Now().Add(15 * time.Second)
	for show(t, id, args).State != "complete" {
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("the reconciler never finalized the upload; log:\n%s", p.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, want := show(t, id, args), hexSum(data); v.SHA256 != want {
		t.Fatalf("recorded sha256 %q; want %s", v.SHA256, want)
	}
	if got := download(t, url); !bytes.Equal(got, data) {
		t.Fatal("download differs")
	}
}

// show is upload id as `intake uploads show --json` prints it.
func show(t *testing.T, id string, args []string) server.UploadView {
	t.Helper()
	var v server.UploadView
	if err := json.Unmarshal(cli(t, append([]string{"uploads", "show", id, "--json"}, args...)...), &v); err != nil {
		t.Fatal(err)
	}
	return v
}
