package hooks

import (
	"maps"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeFilename(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 300)
	// 150 two-byte characters: 300 bytes, cut must not split one.
	longUnicode := strings.Repeat("é", 150)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "report.pdf", "report.pdf"},
		{"spaces inside kept", "my report (final).pdf", "my report (final).pdf"},
		{"unicode kept", "Überweisung – 日本語 🎉.pdf", "Überweisung – 日本語 🎉.pdf"},
		{"hidden file kept", ".bashrc", ".bashrc"},
		{"leading dots kept", "..hidden", "..hidden"},
		{"parent traversal", "../x", "x"},
		{"deep traversal", "../../../etc/passwd", "passwd"},
		{"subdirectory", "a/b", "b"},
		{"absolute path", "/etc/passwd", "passwd"},
		{"windows path", `C:\x`, "x"},
		{"windows full path (old browsers)", `C:\Users\me\Desktop\report.pdf`, "report.pdf"},
		{"windows drive-relative", "C:x", "C_x"},
		{"unc path", `\\server\share\file.txt`, "file.txt"},
		{"mixed separators", `a\b/c`, "c"},
		{"trailing slash", "dir/file.txt/", "file.txt"},
		{"trailing dot-dot", "x/..", "x"},
		{"only dots", "..", FallbackFilename},
		{"only dot", ".", FallbackFilename},
		{"only separators", "///", FallbackFilename},
		{"dots and separators", "../..", FallbackFilename},
		{"empty", "", FallbackFilename},
		{"blank", "   ", FallbackFilename},
		{"trimmed", "  a.txt  ", "a.txt"},
		{"trailing dots", "a.txt...", "a.txt"},
		{"non-breaking spaces trimmed", "\u00a0a.txt\u00a0", "a.txt"},
		{"con", "con", "_con"},
		{"con.txt", "con.txt", "_con.txt"},
		{"CON upper", "CON", "_CON"},
		{"con with two extensions", "Con.tar.gz", "_Con.tar.gz"},
		{"con before space and extension", "con .txt", "_con .txt"},
		{"COM1", "COM1", "_COM1"},
		{"com9 with extension", "com9.log", "_com9.log"},
		{"com superscript", "COM¹", "_COM¹"},
		{"lpt3", "LPT3.txt", "_LPT3.txt"},
		{"nul", "nul", "_nul"},
		{"prn and aux", "aux.c", "_aux.c"},
		{"conin$", "CONIN$", "_CONIN$"},
		{"reserved after path", "dir/NUL", "_NUL"},
		{"reserved after trailing dot", "con.", "_con"},
		{"not reserved: longer", "console.txt", "console.txt"},
		{"not reserved: COM10", "COM10", "COM10"},
		{"not reserved: inside", "my-con.txt", "my-con.txt"},
		{"nul byte", "evil.php\x00.jpg", "evil.php.jpg"},
		{"only nul", "\x00", FallbackFilename},
		{"control characters", "a\tb\nc\rd\x1b[31m.txt", "abcd[31m.txt"},
		{"del and c1", "a\x7fb\u0085c", "abc"},
		{"bidi override", "invoice\u202Efdp.exe", "invoicefdp.exe"},
		{"bidi isolate", "a\u2066b\u2069.txt", "ab.txt"},
		{"line separator", "a\u2028b", "ab"},
		{"bom", "\ufeffa.txt", "a.txt"},
		{"invalid utf-8", "a\xffb.txt", "a_b.txt"},
		{"windows forbidden characters", `a<b>c:d"e|f?g*h.txt`, "a_b_c_d_e_f_g_h.txt"},
		{"300-byte name", long, long[:MaxFilenameBytes]},
		{"300-byte name keeps extension", long + ".pdf", long[:MaxFilenameBytes-4] + ".pdf"},
		{"long extension not kept", "a." + long, ("a." + long)[:MaxFilenameBytes]},
		{"300-byte unicode name", longUnicode, strings.Repeat("é", 127)},
		{"255 bytes untouched", long[:255], long[:255]},
		{"cut ends in spaces", "a" + strings.Repeat(" ", 300) + "b", "a"},
		{"emoji cut", strings.Repeat("🎉", 70), strings.Repeat("🎉", 63)},
	}
	for _, tc := range tests {
		got := SanitizeFilename(tc.in)
		if got != tc.want {
			t.Errorf("%s: SanitizeFilename(%q) = %q; want %q", tc.name, tc.in, got, tc.want)
		}
		if len(got) > MaxFilenameBytes || !utf8.ValidString(got) || strings.ContainsAny(got, "/\\\x00") {
			t.Errorf("%s: SanitizeFilename(%q) = %q: not a safe name", tc.name, tc.in, got)
		}
		if again := SanitizeFilename(got); again != got {
			t.Errorf("%s: SanitizeFilename is not idempotent: %q -> %q -> %q", tc.name, tc.in, got, again)
		}
	}
}

func TestSanitizeMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   map[string]string
		want map[string]string // nil: unchanged
	}{
		{"no metadata", nil, nil},
		{"no filename", map[string]string{"filetype": "image/png"}, nil},
		{"safe filename", map[string]string{"filename": "a.png", "filetype": "image/png"}, nil},
		{"path", map[string]string{"filename": "../x.png", "filetype": "image/png"},
			map[string]string{"filename": "x.png", "filename_original": "../x.png", "filetype": "image/png"}},
		{"empty filename", map[string]string{"filename": ""},
			map[string]string{"filename": FallbackFilename, "filename_original": ""}},
		{"bidi override", map[string]string{"filename": "a\u202etxt.exe"},
			map[string]string{"filename": "atxt.exe", "filename_original": "a\u202etxt.exe"}},
		{"client's filename_original replaced", map[string]string{"filename": "a/b", "filename_original": "forged"},
			map[string]string{"filename": "b", "filename_original": "a/b"}},
	}
	for _, tc := range tests {
		var before map[string]string
		if tc.in != nil {
			before = maps.Clone(tc.in)
		}
		got := SanitizeMetadata(tc.in)
		if !maps.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%s: SanitizeMetadata(%q) = %q; want %q", tc.name, tc.in, got, tc.want)
		}
		if !maps.Equal(tc.in, before) {
			t.Errorf("%s: SanitizeMetadata changed its argument to %q", tc.name, tc.in)
		}
	}
}
