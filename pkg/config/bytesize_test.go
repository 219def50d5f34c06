package config_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/intake-dev/intake/pkg/config"
	"gopkg.in/yaml.v3"
)

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want config.ByteSize
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"1B", 1},
		{"1b", 1},
		{"1KB", 1000},
		{"1kb", 1000},
		{"1KiB", 1024},
		{"1kib", 1024},
		{"1 MiB", 1 << 20},
		{"  2GiB  ", 2 << 30},
		{"500MB", 500_000_000},
		{"10GiB", 10 << 30},
		{"1.5GiB", 3 << 29},
		{"1.5KB", 1500},
		{"1.1GB", 1_100_000_000},
		{"4.1GB", 4_100_000_000}, // float64 4.1*1e9 truncates to 4099999999
		{"0.5KiB", 512},
		{"2.000MB", 2_000_000},
		{"10TB", 10_000_000_000_000},
		{"1TiB", 1 << 40},
		{"8388607TiB", 8388607 << 40},
		{"9223372036854775807", math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := config.ParseByteSize(tt.in)
			if err != nil {
				t.Fatalf("ParseByteSize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseByteSize(%q) = %d; want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseByteSizeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"-1", "negative"},
		{"-1GiB", "negative"},
		{"+5", "must be a number"},
		{"abc", "must be a number"},
		{"GiB", "must be a number"},
		{".5KB", "must be a number"},
		{"5.KB", "must be a number"},
		{"1..5KB", "must be a number"},
		{"1,000", "unknown unit"},
		{"1e3", "unknown unit"},
		{"10XB", `unknown unit "XB"`},
		{"10 G", `unknown unit "G"`},
		{"10 k", `unknown unit "k"`},
		{"1.5", "whole number of bytes"},
		{"1.5B", "whole number of bytes"},
		{"0.1KiB", "whole number of bytes"},
		{"9223372036854775808", "too large"},
		{"8388608TiB", "too large"},
		{"99999999999999999999999999TB", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := config.ParseByteSize(tt.in)
			if err == nil {
				t.Fatalf("ParseByteSize(%q) = %d; want error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseByteSize(%q) error = %q; want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   config.ByteSize
		want string
	}{
		{0, "0"},
		{1, "1"},
		{999, "999"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{1536, "1536"},
		{1_024_000, "1000KiB"},
		{500_000_000, "500MB"},
		{10 << 30, "10GiB"},
		{1_000_000_000_000, "1TB"},
		{1 << 40, "1TiB"},
		{3 << 50, "3072TiB"},
		{math.MaxInt64, "9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.in.String(); got != tt.want {
				t.Errorf("ByteSize(%d).String() = %q; want %q", int64(tt.in), got, tt.want)
			}
			back, err := config.ParseByteSize(tt.want)
			if err != nil || back != tt.in {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.want, back, err, tt.in)
			}
		})
	}
}

// FuzzByteSizeRoundTrip checks that String always renders something
// ParseByteSize reads back to the same value; its seeds run in go test.
func FuzzByteSizeRoundTrip(f *testing.F) {
	for _, v := range []int64{0, 1, 1000, 1024, 1_500_000, 3 << 29, 1 << 40, math.MaxInt64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v int64) {
		if v < 0 {
			return
		}
		s := config.ByteSize(v).String()
		got, err := config.ParseByteSize(s)
		if err != nil || int64(got) != v {
			t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", s, got, err, v)
		}
	})
}

// FuzzParseByteSize checks that whatever parses is non-negative and survives
// a format/parse round trip.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "1.5GiB", "10 kb", "8388607TiB", "1.", "-3", "9e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := config.ParseByteSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseByteSize(%q) = %d; want >= 0", s, v)
		}
		back, err := config.ParseByteSize(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", v.String(), back, err, v)
		}
	})
}

func TestByteSizeYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		doc     string
		want    config.ByteSize
		wantErr string
	}{
		{doc: "max: 10GiB", want: 10 << 30},
		{doc: "max: 1048576", want: 1 << 20},
		{doc: `max: "1.5 GiB"`, want: 3 << 29},
		{doc: "max: 0", want: 0},
		{doc: "\nmax: 10XB", wantErr: `line 2: invalid byte size "10XB"`},
		{doc: "max: [1, 2]", wantErr: "single value"},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			t.Parallel()
			var v struct {
				Max config.ByteSize `yaml:"max"`
			}
			err := yaml.Unmarshal([]byte(tt.doc), &v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unmarshal(%q) error = %v; want it to contain %q", tt.doc, err, tt.wantErr)
				}
				return
			}
			if err != nil || v.Max != tt.want {
				t.Errorf("Unmarshal(%q) = %d, %v; want %d", tt.doc, v.Max, err, tt.want)
			}
		})
	}
}

// A Config logged as JSON should show sizes the way operators write them.
func TestByteSizeJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(config.ByteSize(10 << 30))
	if err != nil || string(b) != `"10GiB"` {
		t.Errorf("json.Marshal(10GiB) = %s, %v; want \"10GiB\"", b, err)
	}
}
