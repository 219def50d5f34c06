package nodemodules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/intake-dev/intake/internal/testenv"
)

const (
	// installTimeout bounds npm ci. It takes a few seconds with a warm npm
	// cache; the margin is for a cold cache on a slow network.
	installTimeout = 5 * time.Minute
	// stampName holds the hash of the files in a finished install.
	stampName = ".intake-stamp"
)

// ErrNoNode marks the one install failure that is a skip outside CI.
var ErrNoNode = errors.New("node or npm not found")

// Spec is one set of pinned npm packages and the scripts that use them.
type Spec struct {
	// Name identifies the install in messages and names its directory in
	// the user cache (intake-<Name>) when there is no module root.
	Name string
	// Files holds FileNames, which must include package.json and
	// package-lock.json. All of them are hashed, in order, and written
	// into the install, so that node resolves a script's imports from
	// the node_modules next to it.
	Files     fs.FS
	FileNames []string
	// MinNode is the oldest major version of Node.js the packages
	// support; an older node counts as missing.
	MinNode int
}

// Installation is a finished install: Dir holds the files and
// node_modules, Node is the interpreter to run the scripts with.
type Installation struct {
	Dir, Node string
}

// Install makes sure the packages are installed and returns where. Callers
// run it at most once per test binary (sync.OnceValues).
func (s Spec) Install() (Installation, error) {
	node, err := s.findNode()
	if err != nil {
		return Installation{}, err
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return Installation{}, fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	base, err := s.baseDir()
	if err != nil {
		return Installation{}, err
	}
	dir, err := s.installInto(base, npm)
	if err != nil {
		return Installation{}, err
	}
	return Installation{Dir: dir, Node: node}, nil
}

// findNode finds node on PATH and checks it is recent enough: an older
// one counts as missing.
func (s Spec) findNode() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("error running %s --version: %w", node, err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < s.MinNode {
		return "", fmt.Errorf("%w: %s is %s, %s needs %d or later", ErrNoNode, node, v, s.Name, s.MinNode)
	}
	return node, nil
}

// baseDir is tools/_node in the module root (the "_" keeps `go ./...`
// out of node_modules), or a directory in the user's cache when the test
// does not run inside the module.
func (s Spec) baseDir() (string, error) {
	if root, err := testenv.ModuleRoot(); err == nil {
		return filepath.Join(root, "tools", "_node"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no module root and no user cache directory: %w", err)
	}
	return filepath.Join(cache, "intake-"+s.Name), nil
}

// hash identifies the files: an install made from other files is another
// directory.
func (s Spec) hash() (string, error) {
	h := sha256.New()
	for _, name := range s.FileNames {
		b, err := fs.ReadFile(s.Files, name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Pins returns the dependencies of package.json, name to version.
func (s Spec) Pins() (map[string]string, error) {
	b, err := fs.ReadFile(s.Files, "package.json")
	if err != nil {
		return nil, err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return nil, fmt.Errorf("error parsing package.json: %w", err)
	}
	if len(pkg.Dependencies) == 0 {
		return nil, errors.New("package.json has no dependencies")
	}
	return pkg.Dependencies, nil
}

// installInto returns base/<hash>, first building it with npm ci unless a
// finished install of the same files is there.
func (s Spec) installInto(base, npm string) (string, error) {
	sum, err := s.hash()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, sum[:16])
	if s.checkInstall(dir, sum) == nil {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	staging, err := os.MkdirTemp(base, ".install-")
	if err != nil {
		return "", err
	}
	// After the rename this removes nothing.
	defer os.RemoveAll(staging)
	if err := os.Chmod(staging, 0o755); err != nil { // MkdirTemp makes it 0700
		return "", err
	}

	for _, name := range s.FileNames {
		b, err := fs.ReadFile(s.Files, name)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(staging, name), b, 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	// --prefer-offline takes what the npm cache has without asking the
	// registry; the lockfile's integrity hashes still apply.
	cmd := exec.CommandContext(ctx, npm, "ci",
		"--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund",
		"--no-update-notifier", "--loglevel=error")
	cmd.Dir = staging
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("not done after %s", installTimeout)
		}
		return "", fmt.Errorf("npm ci in %s: %v\n%s", staging, err, out)
	}
	if err := os.WriteFile(filepath.Join(staging, stampName), []byte(sum+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := s.checkInstall(staging, sum); err != nil {
		return "", fmt.Errorf("npm ci succeeded in %s but %w", time.Since(start).Round(time.Millisecond), err)
	}

	if err := os.Rename(staging, dir); err != nil {
		// Another test binary may have finished the same install first.
		if s.checkInstall(dir, sum) == nil {
			return dir, nil
		}
		// Or dir is a broken install (node_modules deleted by hand, say).
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
		if err := os.Rename(staging, dir); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// checkInstall reports why dir is not a finished install of the files
// hashing to sum with every pinned package in its node_modules.
func (s Spec) checkInstall(dir, sum string) error {
	stamp, err := os.ReadFile(filepath.Join(dir, stampName))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(stamp)) != sum {
		return fmt.Errorf("%s is an install of other files", dir)
	}
	pins, err := s.Pins()
	if err != nil {
		return err
	}
	for name, want := range pins {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json"))
		if err != nil {
			return err
		}
		var pkg struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(b, &pkg); err != nil || pkg.Version != want {
			return fmt.Errorf("%s in %s is %q, not %s (%v)", name, dir, pkg.Version, want, err)
		}
	}
	return nil
}

var exactVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// CheckLockfile reports every way the files break the pinning policy:
// package.json asks for exact versions, package-lock.json (version 3)
// agrees with it, and every package in the lockfile is a
// registry.npmjs.org tarball with a sha512 integrity hash.
func (s Spec) CheckLockfile() error {
	pins, err := s.Pins()
	if err != nil {
		return err
	}
	b, err := fs.ReadFile(s.Files, "package-lock.json")
	if err != nil {
		return err
	}
	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Version      string            `json:"version"`
			Resolved     string            `json:"resolved"`
			Integrity    string            `json:"integrity"`
			Link         bool              `json:"link"`
			Dependencies map[string]string `json:"dependencies"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return fmt.Errorf("error parsing package-lock.json: %w", err)
	}
	var errs []error
	if lock.LockfileVersion != 3 {
		errs = append(errs, fmt.Errorf("lockfileVersion = %d; want 3", lock.LockfileVersion))
	}
	for _, name := range slices.Sorted(maps.Keys(pins)) {
		pinned := pins[name]
		if !exactVersion.MatchString(pinned) {
			errs = append(errs, fmt.Errorf("package.json asks for %s %q; want an exact version", name, pinned))
		}
		if got := lock.Packages[""].Dependencies[name]; got != pinned {
			errs = append(errs, fmt.Errorf("lockfile root depends on %s %q; want %q as in package.json (rerun npm install --package-lock-only)", name, got, pinned))
		}
		if got := lock.Packages["node_modules/"+name].Version; got != pinned {
			errs = append(errs, fmt.Errorf("lockfile installs %s %q; want %q", name, got, pinned))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(lock.Packages)) {
		p := lock.Packages[name]
		if name == "" {
			continue
		}
		if p.Link || !strings.HasPrefix(p.Resolved, "https://registry.npmjs.org/") || !strings.HasPrefix(p.Integrity, "sha512-") {
			errs = append(errs, fmt.Errorf("%s: resolved %q, integrity %q, link %v; want a registry.npmjs.org tarball with a sha512 integrity", name, p.Resolved, p.Integrity, p.Link))
		}
	}
	return errors.Join(errs...)
}
