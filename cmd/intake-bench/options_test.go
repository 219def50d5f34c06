package main

import (
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults are issue 4's.
	if o.Rounds != 3 || strings.Join(o.Backends, ",") != "file,s3" || strings.Join(o.Workloads, ",") != "W1,W2,W3,W4" ||
		o.Out != "docs/benchmarks.md" || o.JSON != "docs/benchmarks.json" || o.Quick || o.MinFree != 8<<30 {
		t.Errorf("defaults = %+v", o)
	}
	if s := o.sizes(); s.W1 != 1<<30 || s.W2Chunk != 8<<20 || s.W3Uploads != 32 || s.W3Size != 32<<20 || s.W4Creates != 2000 || s.W4Par != 16 {
		t.Errorf("full sizes = %+v", s)
	}

	o, err = parseFlags(strings.Fields("--quick --rounds 1 --backends file --workloads W4,W1"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Rounds != 1 || strings.Join(o.Backends, ",") != "file" || strings.Join(o.Workloads, ",") != "W4,W1" || o.MinFree != 512<<20 {
		t.Errorf("parsed = %+v", o)
	}
	// Quick keeps the shape (PATCH size, concurrency) and shrinks totals.
	if s := o.sizes(); s.W1 != 64<<20 || s.W2Chunk != 8<<20 || s.W3Uploads != 32 || s.W3Size != 2<<20 || s.W4Creates != 125 || s.W4Par != 16 {
		t.Errorf("quick sizes = %+v", s)
	}

	for _, tc := range []struct{ args, want string }{
		{"--rounds 0", "at least 1"},
		{"--backends file,gcs", `unknown "gcs"`},
		{"--backends file,file", "given twice"},
		{"--backends ,", "none given"},
		{"--workloads W5", "measured during W1 and W3"},
		{"--workloads W1,W6", `unknown "W6"`},
		{"--out ", "must name files"},
		{"--timeout 0s", "positive"},
		{"extra", "unexpected arguments"},
	} {
		_, err := parseFlags(strings.Fields(tc.args), io.Discard)
		if tc.args == "--out " {
			_, err = parseFlags([]string{"--out", ""}, io.Discard)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want %q", tc.args, err, tc.want)
		}
	}
}
