package deploytest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestDockerfileImagesPinned(t *testing.T) {
	t.Parallel()
	stages := loadDockerfile(t)
	names := map[string]bool{}
	for _, st := range stages {
		if !names[st.image] && st.image != "scratch" { // FROM an earlier stage
			if msg := pinned(st.image); msg != "" {
				t.Errorf("%s line %d: image %s %s", dockerfilePath, st.line, st.image, msg)
			}
		}
		if st.name != "" {
			names[st.name] = true
		}
	}
}

func TestDockerfileRunsAsNonRoot(t *testing.T) {
	t.Parallel()
	users := finalStage(t, loadDockerfile(t)).all("USER")
	if len(users) == 0 {
		t.Fatalf("%s: the final stage has no USER, so intake runs as root", dockerfilePath)
	}
	last := users[len(users)-1]
	user, _, _ := strings.Cut(last.args, ":")
	if user == "" || user == "root" || user == "0" {
		t.Errorf("%s line %d: USER %s is root", dockerfilePath, last.line, last.args)
	}
}

// goVersion parses "1.26.8" (or "1.26", patch 0) into its three numbers.
var goVersion = regexp.MustCompile(`^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?`)

func parseGoVersion(s string) ([3]int, bool) {
	m := goVersion.FindStringSubmatch(s)
	if m == nil {
		return [3]int{}, false
	}
	var v [3]int
	for i := range 3 {
		if m[i+1] != "" {
			v[i], _ = strconv.Atoi(m[i+1])
		}
	}
	return v, true
}

// moduleLine returns the argument of go.mod's first line starting with
// directive ("go", "module").
func moduleLine(t *testing.T, directive string) string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, "go.mod"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == directive {
			return f[1]
		}
	}
	t.Fatalf("go.mod has no %s line", directive)
	return ""
}

// The builder must be able to build go.mod's code without fetching a
// toolchain (GOTOOLCHAIN=local), and should be the Go the project tests
// with, so the same minor version, at least go.mod's patch.
func TestDockerfileGoMatchesGoMod(t *testing.T) {
	t.Parallel()
	want, ok := parseGoVersion(moduleLine(t, "go"))
	if !ok {
		t.Fatalf("go.mod's go line %q is not a version", moduleLine(t, "go"))
	}
	var builder *stage
	stages := loadDockerfile(t)
	for i, st := range stages {
		name, _, _ := strings.Cut(st.image[strings.LastIndex(st.image, "/")+1:], ":")
		if name == "golang" {
			builder = &stages[i]
		}
	}
	if builder == nil {
		t.Fatalf("%s has no golang stage", dockerfilePath)
	}
	_, tag, _ := strings.Cut(builder.image[strings.LastIndex(builder.image, "/")+1:], ":")
	got, ok := parseGoVersion(tag)
	if !ok || !strings.HasPrefix(tag, strconv.Itoa(got[0])+"."+strconv.Itoa(got[1])+"."+strconv.Itoa(got[2])) {
		t.Fatalf("%s line %d: builder %s is not pinned to a Go patch release such as golang:%d.%d.%d-bookworm", dockerfilePath, builder.line, builder.image, want[0], want[1], want[2])
	}
	if got[0] != want[0] || got[1] != want[1] || got[2] < want[2] {
		t.Errorf("%s line %d: builder %s is Go %d.%d.%d; go.mod says go %d.%d.%d: use golang:%d.%d.%d or a later %d.%d patch",
			dockerfilePath, builder.line, builder.image, got[0], got[1], got[2], want[0], want[1], want[2], want[0], want[1], want[2], want[0], want[1])
	}
	if builder.env(t)["GOTOOLCHAIN"] != "local" {
		t.Errorf("%s: the builder stage does not set GOTOOLCHAIN=local, so a newer go.mod would download a toolchain mid-build", dockerfilePath)
	}
}

// The go build must be static (the final image has no glibc) and stamp the
// version; -X on a variable that does not exist is silently ignored.
var stampFlag = regexp.MustCompile(`-X[ =]([^ "=]+)\.([A-Za-z_][A-Za-z0-9_]*)=\$\{?VERSION\}?`)

func TestDockerfileBuildsStaticStampedBinary(t *testing.T) {
	t.Parallel()
	var build *instruction
	var st stage
	for _, s := range loadDockerfile(t) {
		for _, in := range s.all("RUN") {
			if strings.Contains(in.args, "go build") {
				build, st = &in, s
			}
		}
	}
	if build == nil {
		t.Fatalf("%s has no RUN ... go build", dockerfilePath)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/intake"} {
		if !strings.Contains(build.args, want) {
			t.Errorf("%s line %d: go build lacks %s", dockerfilePath, build.line, want)
		}
	}
	hasArg := false
	for _, a := range st.all("ARG") {
		hasArg = hasArg || a.args == "VERSION" || strings.HasPrefix(a.args, "VERSION=")
	}
	if !hasArg {
		t.Errorf("%s: the build stage has no ARG VERSION", dockerfilePath)
	}

	m := stampFlag.FindStringSubmatch(build.args)
	if m == nil {
		t.Fatalf("%s line %d: go build does not stamp -X <package>.<var>=${VERSION}", dockerfilePath, build.line)
	}
	pkg, name := m[1], m[2]
	rel, ok := strings.CutPrefix(pkg, moduleLine(t, "module")+"/")
	if !ok {
		t.Fatalf("%s: -X names package %s, outside module %s", dockerfilePath, pkg, moduleLine(t, "module"))
	}
	if !hasStringVar(t, filepath.Join(repoRoot(t), rel), name) {
		t.Errorf("%s: -X %s.%s: package %s has no package-level string variable %s, so the version would silently stay unset", dockerfilePath, pkg, name, pkg, name)
	}
}

// hasStringVar reports whether the package in dir declares a package-level
// string variable called name, the only kind -X can set.
func hasStringVar(t *testing.T, dir, name string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name {
						continue
					}
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						return true
					}
					if vs.Type == nil && i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// Run with plain `docker run`, the image must serve on a reachable address
// on the port it exposes and health-checks.
func TestDockerfileListenMatchesExposeAndHealthcheck(t *testing.T) {
	t.Parallel()
	final := finalStage(t, loadDockerfile(t))
	listen := resolveConfig(t, final.env(t)).Listen
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen address %q: %v", listen, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s: the image listens on %q; set ENV INTAKE_LISTEN=:%s so a published port reaches it", dockerfilePath, listen, port)
	}
	exposed := false
	for _, in := range final.all("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			exposed = exposed || strings.TrimSuffix(p, "/tcp") == port
		}
	}
	if !exposed {
		t.Errorf("%s: EXPOSE does not list port %s, where intake listens", dockerfilePath, port)
	}
	hcs := final.all("HEALTHCHECK")
	if len(hcs) == 0 || !strings.Contains(hcs[len(hcs)-1].args, "127.0.0.1:"+port+"/readyz") {
		t.Errorf("%s: no HEALTHCHECK probing http://127.0.0.1:%s/readyz", dockerfilePath, port)
	}
	ep := final.all("ENTRYPOINT")
	if len(ep) == 0 || ep[len(ep)-1].args != `["/intake"]` {
		t.Errorf(`%s: want ENTRYPOINT ["/intake"] (exec form, so intake is PID 1 and gets SIGTERM)`, dockerfilePath)
	}
}
