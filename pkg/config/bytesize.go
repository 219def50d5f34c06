package config

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ByteSize is a number of bytes that reads and writes human units: "1048576",
// "500MB", "10GiB", "1.5 GiB". KB, MB, GB and TB are powers of 1000; KiB, MiB,
// GiB and TiB are powers of 1024; units are case-insensitive. It implements
// pflag.Value, so the same parser serves flags, env vars and the config file.
type ByteSize int64

// byteUnits is ordered largest first so that String picks the largest unit
// that divides a value exactly.
var byteUnits = []struct {
	name string
	size int64
}{
	{"TiB", 1 << 40},
	{"TB", 1_000_000_000_000},
	{"GiB", 1 << 30},
	{"GB", 1_000_000_000},
	{"MiB", 1 << 20},
	{"MB", 1_000_000},
	{"KiB", 1 << 10},
	{"KB", 1_000},
}

const unitList = "B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"

// ParseByteSize parses a size such as "1048576", "500MB" or "1.5GiB". A
// fraction must come out to a whole number of bytes. Errors do not repeat s,
// because pflag already quotes the argument around a Set error.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty size; use a number of bytes or a number with a unit such as 10GiB")
	}
	if s[0] == '-' {
		return 0, errors.New("size must not be negative")
	}
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(s)
	}
	num, unit := s[:end], strings.TrimSpace(s[end:])
	if !isDecimal(num) {
		return 0, errors.New("size must be a number optionally followed by a unit, such as 1048576, 500MB or 1.5GiB")
	}
	mult := int64(0)
	if unit == "" || strings.EqualFold(unit, "B") {
		mult = 1
	}
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			mult = u.size
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q; use %s", unit, unitList)
	}
	// Exact rational arithmetic: "1.1GB" is exactly 1100000000 bytes, and
	// float rounding must not decide what limit an operator gets.
	r, ok := new(big.Rat).SetString(num)
	if !ok { // unreachable: isDecimal accepted num
		return 0, errors.New("size is not a number")
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, errors.New("size is not a whole number of bytes; use fewer decimals or a smaller unit")
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("size is too large; the maximum is %d bytes", int64(^uint64(0)>>1))
	}
	return ByteSize(r.Num().Int64()), nil
}

// isDecimal reports whether s is digits, optionally followed by "." and more
// digits.
func isDecimal(s string) bool {
	whole, frac, hasDot := strings.Cut(s, ".")
	digits := func(p string) bool {
		return p != "" && strings.Trim(p, "0123456789") == ""
	}
	return digits(whole) && (!hasDot || digits(frac))
}

// String renders b with the largest unit that divides it exactly ("10GiB",
// "500MB"), or as plain bytes, so that ParseByteSize(b.String()) == b.
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range byteUnits {
			if int64(b)%u.size == 0 {
				return strconv.FormatInt(int64(b)/u.size, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Set implements pflag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Type implements pflag.Value; it is the placeholder shown in --help.
func (b *ByteSize) Type() string { return "bytes" }

// MarshalText makes JSON logs and YAML output show "10GiB" rather than a raw
// integer.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error { return b.Set(string(text)) }

// UnmarshalYAML accepts a scalar (10GiB, 1048576, "1.5 GiB") and reports the
// line of a bad value.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a byte size must be a single value such as 10GiB", n.Line)
	}
	if err := b.Set(n.Value); err != nil {
		return fmt.Errorf("line %d: invalid byte size %q: %w", n.Line, n.Value, err)
	}
	return nil
}
