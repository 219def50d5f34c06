package config_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/intake-dev/intake/pkg/config"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

const examplePath = "../../config/intake.example.yaml"

// defaultInComment finds "Default X" in a key's comment; X is a quoted
// string or a bare word such as 60s, true or 16.
var defaultInComment = regexp.MustCompile(`Default ("[^"]*"|[^\s.]+)`)

// TestExampleFile keeps config/intake.example.yaml in step with
// RegisterFlags: exactly the registered settings, each at its default, each
// with a comment naming its env var and the same default.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parsing %s: %v", examplePath, err)
	}
	root := doc.Content[0]
	if !strings.Contains(doc.HeadComment+root.HeadComment, "INTAKE_CONFIG") {
		t.Errorf("%s: header comment does not explain --config / INTAKE_CONFIG", examplePath)
	}

	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	var want []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" { // cannot be set in the file
			want = append(want, f.Name)
		}
	})

	var got []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		key := root.Content[i]
		got = append(got, key.Value)
		f := fs.Lookup(key.Value)
		if f == nil {
			continue // reported by the key comparison below
		}
		if env := "Env " + envName(key.Value) + "."; !strings.Contains(key.HeadComment, env) {
			t.Errorf("%s line %d: comment above %q does not say %q", examplePath, key.Line, key.Value, env)
		}
		m := defaultInComment.FindStringSubmatch(key.HeadComment)
		if m == nil {
			t.Errorf("%s line %d: comment above %q does not state its default", examplePath, key.Line, key.Value)
			continue
		}
		stated := m[1]
		if s, err := strconv.Unquote(stated); err == nil {
			stated = s
		}
		// Parse the stated default with the flag's own type so "60s" matches
		// a registered default of 1m0s.
		probe := pflag.NewFlagSet("probe", pflag.ContinueOnError)
		var pc config.Config
		pc.RegisterFlags(probe)
		if err := probe.Set(key.Value, stated); err != nil || probe.Lookup(key.Value).Value.String() != f.DefValue {
			t.Errorf("%s line %d: comment says the default of %q is %q; want %q", examplePath, key.Line, key.Value, m[1], f.DefValue)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys = %v; want exactly the registered flags %v", examplePath, got, want)
	}

	// The values in the file are the defaults.
	if err := fs.Parse([]string{"--config", examplePath}); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(fs, func(string) string { return "" }); err != nil {
		t.Fatalf("Resolve with %s: %v", examplePath, err)
	}
	c.ConfigFile = ""
	if c != config.Default() {
		t.Errorf("%s resolves to\n%+v\nwant Default()\n%+v", examplePath, c, config.Default())
	}
}
