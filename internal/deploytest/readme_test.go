package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/spf13/pflag"

	"github.com/intake-dev/intake/pkg/config"
)

// TestREADMEDocumentsEverySetting: the README's configuration table has a
// row for every setting, with its env var, so the table cannot fall behind
// the code.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var c config.Config
	fs := pflag.NewFlagSet("intake", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		env := "INTAKE_" + regexp.MustCompile(`-`).ReplaceAllString(f.Name, "_")
		row := regexp.MustCompile("(?m)^\\| `--" + regexp.QuoteMeta(f.Name) + "` \\| `(?i:" + regexp.QuoteMeta(env) + ")` \\|")
		if !row.Match(data) {
			t.Errorf("README.md has no configuration row for --%s (%s)", f.Name, env)
		}
	})
}
