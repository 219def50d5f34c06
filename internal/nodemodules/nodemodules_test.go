package nodemodules

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestCheckLockfile: each way of loosening a pin is caught, and a lockfile
// that keeps them all passes.
func TestCheckLockfile(t *testing.T) {
	t.Parallel()
	const pkg = `{"dependencies": {"left-pad": "1.3.0"}}`
	const tarball = `"resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "integrity": "sha512-AAAA"`
	lock := func(version, root, entry string) string {
		return `{"lockfileVersion": ` + version + `, "packages": {
			"": {"dependencies": {"left-pad": "` + root + `"}},
			"node_modules/left-pad": {` + entry + `}}}`
	}
	good := lock("3", "1.3.0", `"version": "1.3.0", `+tarball)
	for _, tc := range []struct {
		name, pkg, lock string
		want            string // in the error; "" for none
	}{
		{"pinned", pkg, good, ""},
		{"range", `{"dependencies": {"left-pad": "^1.3.0"}}`, lock("3", "^1.3.0", `"version": "1.3.0", `+tarball), "want an exact version"},
		{"no dependencies", `{}`, good, "no dependencies"},
		{"lockfile v2", pkg, lock("2", "1.3.0", `"version": "1.3.0", `+tarball), "lockfileVersion = 2"},
		{"stale root", pkg, lock("3", "1.2.0", `"version": "1.3.0", `+tarball), "rerun npm install"},
		{"other version installed", pkg, lock("3", "1.3.0", `"version": "1.2.0", `+tarball), `installs left-pad "1.2.0"`},
		{"git dependency", pkg, lock("3", "1.3.0", `"version": "1.3.0", "resolved": "git+ssh://git@github.com/x/left-pad.git#abc"`), "registry.npmjs.org tarball"},
		{"sha1 integrity", pkg, lock("3", "1.3.0", `"version": "1.3.0", "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "integrity": "sha1-AAAA"`), "sha512"},
		{"link", pkg, lock("3", "1.3.0", `"version": "1.3.0", "link": true, `+tarball), "link true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Spec{Name: "test", Files: fstest.MapFS{
				"package.json":      {Data: []byte(tc.pkg)},
				"package-lock.json": {Data: []byte(tc.lock)},
			}}
			err := s.CheckLockfile()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckLockfile() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("CheckLockfile() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
