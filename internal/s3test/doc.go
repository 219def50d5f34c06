// Package s3test gives tests a real S3 server: a versitygw process with its
// posix backend, listening on a free loopback port.
//
// Start(t) runs a server of its own for one test and stops it, removing its
// directory, when the test ends; use it for anything that stops the server.
// A package with many S3 tests can share one server instead:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
//
//	func TestUpload(t *testing.T) {
//		t.Parallel()
//		s := s3test.Shared(t)
//		bucket := s.NewBucket(t)
//		...
//	}
//
// Either way each test takes buckets of its own from NewBucket, gives the
// code under test s.Endpoint, s.Region and the credentials (s.Env() for a
// child process), and asserts with ListObjects and ListMultipartUploads
// that nothing was left behind. Stop kills the process, as an outage would;
// Restart brings it back on the same port and directory with all data,
// unfinished multipart uploads included. Region is deliberately not
// us-east-1, so a client that ignores the configured region is refused.
//
// The binary comes from $INTAKE_VERSITYGW, else tools/bin/versitygw in the
// module root, else PATH; `make tools` installs the pinned version into
// tools/bin and `make test` does so before running the tests. When it cannot
// be found the test is skipped, unless CI=true: in CI a skipped S3 test would
// hide a broken pipeline, so it fails. A binary that is there but does not
// come up always fails the test, with versitygw's output.
//
// versitygw keeps object metadata in user xattrs. When the temporary
// directory has none (tmpfs before Linux 6.6), the server keeps it in a
// sidecar directory next to Dir instead. Dir holds one directory per bucket
// and versitygw's own .sgwtmp directories; look at it only through S3.
//
// Launch and Close start and stop a server outside any test; the benchmark
// harness (cmd/intake-bench) is their one user.
//
// This package is for tests and that harness only. It must never be
// imported by intake's own code, never touch anything outside the
// directories it creates, and never leave a versitygw running: on Linux the
// process is killed with the test binary (or the harness) even when
// cleanups do not run.
package s3test
