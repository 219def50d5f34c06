package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Resolve fills in, for every setting not given on the command line, the
// value of its env var INTAKE_<NAME> if that is non-empty, else the value of
// its key in the YAML file named by --config or INTAKE_CONFIG. Defaults stay
// for the rest. Every value goes through the flag's own Set, so a value parses
// the same from all three sources. fs must be the flag set c.RegisterFlags
// populated, after fs.Parse; Resolve does not mark flags as Changed, so
// fs.Changed keeps meaning "given on the command line".
//
// An empty env var counts as unset: shells and container runtimes produce
// empty variables by accident far more often than on purpose, and a setting
// that must be empty can be given as a flag or in the file.
//
// Resolve reports every bad env var and file entry at once, each naming its
// source. It then adds the trailing "/" to base-path. It does not call
// Validate. getenv is os.Getenv in production; nil means os.Getenv.
func (c *Config) Resolve(fs *pflag.FlagSet, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, name := range flagNames() {
		if fs.Lookup(name) == nil {
			return fmt.Errorf("flag --%s is not registered; call Config.RegisterFlags on this flag set first", name)
		}
	}

	var errs []error
	cf := fs.Lookup("config")
	if v := getenv(envVar("config")); !cf.Changed && v != "" {
		_ = cf.Value.Set(v) // a string flag accepts anything
	}
	path := cf.Value.String()
	var file map[string]fileValue
	if path != "" {
		var err error
		if file, err = readFile(path); err != nil {
			errs = append(errs, err)
		}
	}

	for _, name := range flagNames() {
		f := fs.Lookup(name)
		if name == "config" || f.Changed {
			continue
		}
		if v := getenv(envVar(name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s (--%s): %s", envVar(name), name, invalidValue(f, v, err)))
			}
			continue
		}
		if fv, ok := file[name]; ok {
			if err := f.Value.Set(fv.value); err != nil {
				errs = append(errs, fmt.Errorf("config file %s, line %d, key %q: %s", path, fv.line, name, invalidValue(f, fv.value, err)))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	if strings.HasPrefix(c.BasePath, "/") && !strings.HasSuffix(c.BasePath, "/") {
		c.BasePath += "/"
	}
	return nil
}

// invalidValue says what is wrong with v in terms of what to write instead.
// pflag's own messages for its types are strconv errors that say neither.
func invalidValue(f *pflag.Flag, v string, err error) string {
	hint := err.Error()
	switch f.Value.Type() {
	case "bool":
		hint = "use true or false"
	case "duration":
		hint = "use a duration with a unit, such as 30s, 2m or 1h30m"
	case "int":
		hint = "use a whole number"
	}
	return fmt.Sprintf("invalid value %q: %s", v, hint)
}

type fileValue struct {
	value string
	line  int
}

// readFile reads the YAML config file into flag-name -> value. Every scalar
// is taken as its literal text (10GiB, false, 60s), because the flag's Set
// is the one parser. Unknown keys are errors so a typo cannot silently leave
// a default in place.
func readFile(path string) (map[string]fileValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file (set by --config or %s): %w", envVar("config"), err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil // empty file, or comments only
	} else if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: must hold one YAML document; remove the extra \"---\" documents", path)
	}

	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s, line %d: must be a mapping of setting names to values, e.g. \"max-size: 10GiB\"", path, root.Line)
	}

	known := flagNames()
	values := make(map[string]fileValue, len(root.Content)/2)
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		key := k.Value
		switch {
		case key == "config":
			errs = append(errs, fmt.Errorf("config file %s, line %d: key \"config\" is not allowed in the config file; use --config or %s", path, k.Line, envVar("config")))
			continue
		case !slices.Contains(known, key):
			errs = append(errs, fmt.Errorf("config file %s, line %d: unknown key %q; %s", path, k.Line, key, suggest(key, known)))
			continue
		case v.Kind != yaml.ScalarNode:
			errs = append(errs, fmt.Errorf("config file %s, line %d, key %q: must be a single value, not a list or mapping", path, k.Line, key))
			continue
		}
		if prev, dup := values[key]; dup {
			errs = append(errs, fmt.Errorf("config file %s, line %d: key %q is already set on line %d; keep one", path, k.Line, key, prev.line))
			continue
		}
		val := v.Value
		if v.Tag == "!!null" { // "key:" or "key: ~" means empty, like key: ""
			val = ""
		}
		values[key] = fileValue{value: val, line: k.Line}
	}
	return values, errors.Join(errs...)
}

// suggest names the known key closest to a misspelt one.
func suggest(key string, known []string) string {
	norm := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	best, bestDist := "", 3 // more than two edits away is not a typo
	for _, k := range known {
		if k == "config" {
			continue
		}
		if d := editDistance(norm, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("the closest setting is %q", best)
	}
	names := slices.DeleteFunc(slices.Clone(known), func(k string) bool { return k == "config" })
	return "valid keys are " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
