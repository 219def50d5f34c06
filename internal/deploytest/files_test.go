package deploytest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/intake-dev/intake/internal/testenv"
	"github.com/intake-dev/intake/pkg/config"
	"github.com/spf13/pflag"
)

// The files under test, relative to the repository root.
const (
	composePath    = "docker-compose.yml"
	composeEnvPath = "config/compose.env"
	dockerfilePath = "Dockerfile"
	// intakeService is the compose service built from the Dockerfile.
	intakeService = "intake"
)

// repoRoot is the module's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// settingEnvVars maps every INTAKE_* variable intake reads to its flag,
// derived from config.RegisterFlags so it cannot drift from the code.
var settingEnvVars = sync.OnceValue(func() map[string]string {
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	vars := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		vars["INTAKE_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))] = f.Name
	})
	return vars
})

// resolveConfig builds intake's configuration from env alone, the way
// `intake serve` with no flags would inside the container.
func resolveConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("resolving intake's environment: %v", err)
	}
	return c
}

// ---- docker-compose.yml ----

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

// service holds the keys the tests look at. Keys with several forms in the
// compose specification (a list or a mapping, a string or a list) are kept
// as decoded and read through the methods below.
type service struct {
	Image           string       `yaml:"image"`
	Build           any          `yaml:"build"`
	EnvFile         any          `yaml:"env_file"`
	Environment     any          `yaml:"environment"`
	DependsOn       any          `yaml:"depends_on"`
	Ports           []any        `yaml:"ports"`
	Volumes         []any        `yaml:"volumes"`
	Healthcheck     *healthcheck `yaml:"healthcheck"`
	Command         any          `yaml:"command"`
	Restart         string       `yaml:"restart"`
	StopGracePeriod string       `yaml:"stop_grace_period"`
}

type healthcheck struct {
	Test    any  `yaml:"test"`
	Disable bool `yaml:"disable"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var cf composeFile
	if err := yaml.Unmarshal([]byte(readFile(t, composePath)), &cf); err != nil {
		t.Fatalf("parsing %s: %v", composePath, err)
	}
	if len(cf.Services) == 0 {
		t.Fatalf("%s has no services", composePath)
	}
	return cf
}

// stringList returns v, a string or a list of strings, as a list.
func stringList(t *testing.T, what string, v any) []string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				t.Fatalf("%s: element %v is not a string", what, e)
			}
			out = append(out, s)
		}
		return out
	}
	t.Fatalf("%s: %v is neither a string nor a list", what, v)
	return nil
}

// envFiles lists the service's env_file paths, relative to the repository
// root (where docker-compose.yml is).
func (s service) envFiles(t *testing.T) []string {
	t.Helper()
	if list, ok := s.EnvFile.([]any); ok {
		var out []string
		for _, e := range list {
			switch e := e.(type) {
			case string:
				out = append(out, e)
			case map[string]any:
				p, _ := e["path"].(string)
				out = append(out, p)
			default:
				t.Fatalf("env_file entry %v is neither a path nor a mapping", e)
			}
		}
		return out
	}
	return stringList(t, "env_file", s.EnvFile)
}

// environment returns the service's environment: key, either form.
func (s service) environment(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v != nil {
				env[k] = fmt.Sprint(v)
			}
		}
	case []any:
		for _, kv := range stringList(t, "environment", e) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	default:
		t.Fatalf("environment %v is neither a mapping nor a list", e)
	}
	return env
}

// dependsOn maps each dependency to its condition; the list form means
// service_started.
func (s service) dependsOn(t *testing.T) map[string]string {
	t.Helper()
	deps := map[string]string{}
	switch d := s.DependsOn.(type) {
	case nil:
	case []any:
		for _, name := range stringList(t, "depends_on", d) {
			deps[name] = "service_started"
		}
	case map[string]any:
		for name, v := range d {
			cond := "service_started"
			if m, ok := v.(map[string]any); ok {
				if c, ok := m["condition"].(string); ok {
					cond = c
				}
			}
			deps[name] = cond
		}
	default:
		t.Fatalf("depends_on %v is neither a list nor a mapping", d)
	}
	return deps
}

// namedVolumes lists the named volumes the service mounts; bind mounts
// (paths) and anonymous volumes are left out.
func (s service) namedVolumes(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, v := range s.Volumes {
		var src string
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				continue // anonymous volume: just a container path
			}
			src = parts[0]
		case map[string]any:
			if typ, _ := v["type"].(string); typ != "volume" {
				continue
			}
			src, _ = v["source"].(string)
		default:
			t.Fatalf("volume %v is neither a string nor a mapping", v)
		}
		if src == "" || strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "~") {
			continue
		}
		names = append(names, src)
	}
	return names
}

// containerPorts lists the container side of each published port.
func (s service) containerPorts(t *testing.T) []string {
	t.Helper()
	var ports []string
	for _, p := range s.Ports {
		switch p := p.(type) {
		case string:
			p, _, _ = strings.Cut(p, "/") // protocol
			parts := strings.Split(p, ":")
			ports = append(ports, parts[len(parts)-1])
		case int:
			ports = append(ports, fmt.Sprint(p))
		case map[string]any:
			ports = append(ports, fmt.Sprint(p["target"]))
		default:
			t.Fatalf("port %v is neither a string nor a mapping", p)
		}
	}
	return ports
}

// healthTest returns the health check's command, or nil if there is none.
func (s service) healthTest(t *testing.T) []string {
	t.Helper()
	if s.Healthcheck == nil || s.Healthcheck.Disable {
		return nil
	}
	test := stringList(t, "healthcheck.test", s.Healthcheck.Test)
	if len(test) == 0 || test[0] == "NONE" {
		return nil
	}
	return test
}

// effectiveEnv is what a service's process sees: the image's ENV (known
// only for the service built from our Dockerfile), then its env_files in
// order, then its environment.
func effectiveEnv(t *testing.T, s service) map[string]string {
	t.Helper()
	env := map[string]string{}
	if s.Build != nil {
		for k, v := range finalStage(t, loadDockerfile(t)).env(t) {
			env[k] = v
		}
	}
	for _, f := range s.envFiles(t) {
		vars, _ := loadEnvFile(t, f)
		for k, v := range vars {
			env[k] = v
		}
	}
	for k, v := range s.environment(t) {
		env[k] = v
	}
	return env
}

// ---- env files ----

type envEntry struct {
	key, value string
	line       int
	commented  bool // the block of lines it is in starts with a comment
}

var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// loadEnvFile reads an env file in the strict subset that docker compose
// and `docker run --env-file` read the same way: KEY=value lines, "#"
// comment lines and blank lines; no quotes, no "export", no comment after a
// value, no surrounding spaces.
func loadEnvFile(t *testing.T, rel string) (map[string]string, []envEntry) {
	t.Helper()
	vars := map[string]string{}
	var entries []envEntry
	sc := bufio.NewScanner(strings.NewReader(readFile(t, rel)))
	blockCommented, inBlock := false, false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			inBlock = false
			continue
		case strings.HasPrefix(line, "#"):
			if !inBlock {
				blockCommented = true
			}
			inBlock = true
			continue
		}
		if !inBlock {
			blockCommented = false
		}
		inBlock = true
		key, value, ok := strings.Cut(line, "=")
		switch {
		case !ok || !envKey.MatchString(key):
			t.Errorf("%s line %d: %q is not KEY=value", rel, n, line)
			continue
		case value != strings.TrimSpace(value):
			t.Errorf("%s line %d: the value of %s has surrounding spaces, which the two readers treat differently", rel, n, key)
		case strings.ContainsAny(value, `"'`):
			t.Errorf("%s line %d: the value of %s is quoted; docker compose strips quotes, docker run --env-file keeps them", rel, n, key)
		case strings.Contains(value, " #"):
			t.Errorf("%s line %d: comment after the value of %s; put it on its own line", rel, n, key)
		}
		if _, dup := vars[key]; dup {
			t.Errorf("%s line %d: %s is set twice", rel, n, key)
		}
		vars[key] = value
		entries = append(entries, envEntry{key: key, value: value, line: n, commented: blockCommented})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars, entries
}

// ---- Dockerfile ----

type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

type stage struct {
	image, name string
	line        int
	ins         []instruction
}

// loadDockerfile splits the Dockerfile into stages of instructions, with
// continuation lines joined and comments dropped.
func loadDockerfile(t *testing.T) []stage {
	t.Helper()
	var stages []stage
	var cur *instruction
	flush := func() {
		if cur == nil {
			return
		}
		if cur.cmd == "FROM" {
			f := strings.Fields(cur.args)
			st := stage{line: cur.line}
			for len(f) > 0 && strings.HasPrefix(f[0], "--") { // --platform=...
				f = f[1:]
			}
			if len(f) > 0 {
				st.image = f[0]
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		} else if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, *cur)
		} else if cur.cmd != "ARG" {
			t.Errorf("%s line %d: %s before the first FROM", dockerfilePath, cur.line, cur.cmd)
		}
		cur = nil
	}
	for n, line := range strings.Split(readFile(t, dockerfilePath), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		cont := strings.HasSuffix(trimmed, `\`)
		trimmed = strings.TrimSpace(strings.TrimSuffix(trimmed, `\`))
		if cur == nil {
			cmd, args, _ := strings.Cut(trimmed, " ")
			cur = &instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: n + 1}
		} else {
			cur.args += " " + trimmed
		}
		if !cont {
			flush()
		}
	}
	flush()
	if len(stages) == 0 {
		t.Fatalf("%s has no FROM", dockerfilePath)
	}
	return stages
}

func finalStage(t *testing.T, stages []stage) stage {
	t.Helper()
	return stages[len(stages)-1]
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// env returns the stage's ENV settings. Only the KEY=value form is
// supported, without spaces in values.
func (s stage) env(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range s.all("ENV") {
		for _, kv := range strings.Fields(in.args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.ContainsAny(v, `"'`) {
				t.Errorf("%s line %d: write ENV as KEY=value pairs without quotes", dockerfilePath, in.line)
				continue
			}
			env[k] = v
		}
	}
	return env
}
