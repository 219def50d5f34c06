// Command intake-bench is the benchmark harness of issue 4: intake against
// a reference tusd binary of the release intake embeds, on the same
// machine, over the same backends (file store; S3 on versitygw), driven by
// the same client, in interleaved rounds. `make bench` runs it and leaves
// docs/benchmarks.md and docs/benchmarks.json.
//
// It builds intake from the tree and tusd in a scratch module under
// tools/ (git-ignored, cached), measures the machine's physical limits
// (loopback TCP, sequential disk write, SHA-256) in the same run, and
// verifies every workload by reading an upload back, so that a broken path
// is never measured.
//
// It must never talk to anything but loopback, never write outside its
// work directory, the tusd cache and the two output files, and never leave
// a server running: servers get SIGTERM, then SIGKILL, on every exit path,
// and die with the harness if it is killed.
package main
