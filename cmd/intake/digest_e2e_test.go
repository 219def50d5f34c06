package main_test

// End-to-end tests of digests with intake as processes: two instances
// continuing one upload's digest, and `intake verify` finding bytes changed
// behind intake's back.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/intake-dev/intake/internal/pgtest"
	"github.com/intake-dev/intake/internal/s3test"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/intake-dev/intake/pkg/server"
)

// deployment is where intake processes keep their state: a catalog and a
// byte store, as flags and environment for `intake serve` and the CLI.
type deployment struct {
	store   string // "file" or "s3"
	dataDir string
	dbURL   string // "" for SQLite in dataDir
	s3      *s3test.Server
	bucket  string
}

// newDeployment makes a deployment on store with a fresh data directory,
// and with postgres a fresh schema (else SQLite); on S3, a versitygw of the
// test's own with a fresh bucket.
func newDeployment(t *testing.T, store string, postgres bool) *deployment {
	t.Helper()
	d := &deployment{store: store, dataDir: t.TempDir()}
	if postgres {
		d.dbURL = pgtest.URL(t)
	}
	if store == "s3" {
		d.s3 = s3test.Start(t)
		d.bucket = d.s3.NewBucket(t)
	}
	return d
}

// args are the settings that select the deployment, with dataDir as the
// process's own data directory (the file store's bytes live there).
func (d *deployment) args(dataDir string) []string {
	a := []string{"--data-dir", dataDir}
	if d.dbURL != "" {
		a = append(a, "--database-url", d.dbURL)
	}
	if d.store == "s3" {
		a = append(a, "--store", "s3", "--s3-bucket", d.bucket, "--s3-endpoint", d.s3.Endpoint,
			"--s3-region", d.s3.Region, "--s3-path-style", "--s3-prefix", "uploads/")
	}
	return a
}

// env is what an intake process's environment adds to the test's: the S3
// credentials, and HOME in dataDir so that no ~/.aws profile of this
// machine joins the credential chain.
func (d *deployment) env(dataDir string) []string {
	env := []string{"HOME=" + dataDir}
	if d.s3 != nil {
		env = append(env, d.s3.Env()...)
	}
	return env
}

// serve starts `intake serve` on the deployment with its own data
// directory (the file store shares the deployment's: its bytes are there)
// and the flags extra, and waits until it is ready.
func (d *deployment) serve(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	return startEnv(t, freePort(t), d.env(dataDir), append(d.args(dataDir), extra...)...)
}

// run runs an intake command on the deployment and returns its output and
// exit status.
func (d *deployment) run(t *testing.T, args ...string) (out string, status int) {
	t.Helper()
	cmd := exec.Command(binary, append(args, d.args(d.dataDir)...)...)
	cmd.Env = append(os.Environ(), d.env(d.dataDir)...)
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(b), exit.ExitCode()
	case err != nil:
		t.Fatalf("intake %v: %v\n%s", args, err, b)
	}
	return string(b), 0
}

// openCatalog opens the deployment's catalog from the test, to read what
// the processes recorded.
func (d *deployment) openCatalog(t *testing.T) server.Catalog {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.DatabaseURL = d.dataDir, d.dbURL
	cat, err := server.OpenCatalog(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// corrupt changes one byte of the stored object of upload id, behind
// intake's back: a bit flip on disk, or an object overwritten in the
// bucket with a body of the same length.
func (d *deployment) corrupt(t *testing.T, id string, data []byte, at int) {
	t.Helper()
	bad := bytes.Clone(data)
	bad[at] ^= 0x01
	if d.store == "s3" {
		objectID, _, _ := strings.Cut(id, "+")
		ctx := context.Background()
		if _, err := d.s3.Client().PutObject(ctx, d.bucket, "uploads/"+objectID, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.OpenFile(filepath.Join(d.dataDir, "uploads", id), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bad[at:at+1], int64(at)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// fallbacks reads intake_digest_fallbacks_total from a process's /metrics.
func fallbacks(t *testing.T, p *proc) float64 {
	t.Helper()
	const series = "intake_digest_fallbacks_total"
	v, ok := p.metric(t, series)
	if !ok {
		t.Fatalf("/metrics of %s has no %s", p.base, series)
	}
	return v
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestDigestAcrossProcesses: two intake processes share one PostgreSQL
// catalog and one store (the data directory, or the bucket); an upload's
// PATCHes go to A, then B, then A. Each continues the digest the other
// recorded: after every PATCH the catalog holds the state at the committed
// offset, the finished digest is the bytes', and neither process read the
// bytes back to get it.
func TestDigestAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	for _, store := range []string{"file", "s3"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			d := newDeployment(t, store, true)
			dirB := d.dataDir
			if store == "s3" {
				dirB = t.TempDir() // another host: only the bucket is shared
			}
			a, b := d.serve(t, d.dataDir), d.serve(t, dirB)
			cat := d.openCatalog(t)
			ctx := context.Background()

			data := random(t, 3<<20+4321)
			cuts := []int64{0, 1<<20 + 1, 2<<20 + 17, int64(len(data))}
			ca := &client.Client{Endpoint: a.base + "/files/"}
			url, _, err := ca.Create(ctx, client.Upload{Size: int64(len(data)), Metadata: map[string]string{"filename": "shared.bin"}}, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			id := path.Base(url)
			// The memory locker is per process: the PATCHes go one at a time.
			for i, p := range []*proc{a, b, a} {
				c := &client.Client{Endpoint: p.base + "/files/"}
				chunk := data[cuts[i]:cuts[i+1]]
				off, err := c.Patch(ctx, c.Endpoint+id, cuts[i], bytes.NewReader(chunk), int64(len(chunk)), -1)
				if err != nil || off != cuts[i+1] {
					p.kill()
					t.Fatalf("PATCH %d to %s: offset %d, %v; want %d; log:\n%s", i+1, p.base, off, err, cuts[i+1], p.log)
				}
				sess, err := cat.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if i < 2 && (sess.Offset != cuts[i+1] || sess.HashOffset != sess.Offset || len(sess.HashState) == 0) {
					t.Fatalf("after PATCH %d: offset %d, hash state of %d bytes at %d; want the state at %d",
						i+1, sess.Offset, len(sess.HashState), sess.HashOffset, cuts[i+1])
				}
			}

			sess, err := cat.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := hexSum(data)
			if sess.State != catalog.StateComplete || sess.SHA256 != want || sess.BlobSHA256 != want {
				t.Errorf("session: state %s, sha256 %q, blob %q; want complete with %s", sess.State, sess.SHA256, sess.BlobSHA256, want)
			}
			if n := fallbacks(t, a) + fallbacks(t, b); n != 0 {
				t.Errorf("digest fallbacks over both processes = %v; want 0: the state was not continued", n)
			}
			if got := download(t, b.base+"/files/"+id); !bytes.Equal(got, data) {
				t.Fatal("download from B differs")
			}
			a.terminate()
			b.terminate()
		})
	}
}

// TestVerifyCatchesCorruption: `intake verify` passes on intact uploads,
// fails naming the digest and the upload whose stored bytes changed behind
// intake's back, and still passes for the intact one alone.
func TestVerifyCatchesCorruption(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	for _, tc := range []struct {
		store    string
		postgres bool
	}{{"file", false}, {"s3", true}} {
		t.Run(tc.store, func(t *testing.T) {
			t.Parallel()
			d := newDeployment(t, tc.store, tc.postgres)
			p := d.serve(t, d.dataDir)
			ctx := context.Background()
			c := &client.Client{Endpoint: p.base + "/files/"}
			var ids []string
			var contents [][]byte
			for i := range 2 {
				data := random(t, 300<<10+i)
				url, err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), 0, map[string]string{"filename": fmt.Sprint(i)}, 0)
				if err != nil {
					t.Fatal(err)
				}
				ids, contents = append(ids, path.Base(url)), append(contents, data)
			}
			good, bad := ids[0], ids[1]
			goodSum, badSum := hexSum(contents[0]), hexSum(contents[1])

			// While intake serves, as an operator would run it.
			out, status := d.run(t, "verify", "--all")
			if status != 0 || !strings.Contains(out, "2 blob(s) checked, 0 bad") {
				t.Fatalf("verify --all on intact uploads: exit %d; want 0 with 2 checked\n%s", status, out)
			}

			d.corrupt(t, bad, contents[1], len(contents[1])/2)
			out, status = d.run(t, "verify", "--all")
			t.Logf("verify --all after corrupting %s (exit %d):\n%s", bad, status, out)
			if status == 0 {
				t.Fatalf("verify --all after corrupting %s: exit 0; want non-zero\n%s", bad, out)
			}
			if !strings.Contains(out, "MISMATCH "+badSum) || !strings.Contains(out, bad) || !strings.Contains(out, "1 bad") {
				t.Errorf("verify --all output does not name the bad digest %s and upload %s:\n%s", badSum, bad, out)
			}
			if !strings.Contains(out, "ok       "+goodSum) {
				t.Errorf("verify --all output does not report the intact %s ok:\n%s", goodSum, out)
			}

			if out, status := d.run(t, "verify", good); status != 0 {
				t.Errorf("verify %s (intact): exit %d; want 0\n%s", good, status, out)
			}
			if out, status := d.run(t, "verify", bad); status == 0 || !strings.Contains(out, badSum) {
				t.Errorf("verify %s (corrupted): exit %d; want non-zero naming %s\n%s", bad, status, badSum, out)
			}
			p.terminate()
		})
	}
}
