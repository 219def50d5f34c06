package hooks

import (
	"maps"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// FallbackFilename replaces a filename that sanitizing leaves empty.
	FallbackFilename = "upload"
	// OriginalFilenameKey is the metadata key that keeps the declared
	// filename when sanitizing changed it.
	OriginalFilenameKey = "filename_original"
	// MaxFilenameBytes is the longest sanitized filename, in UTF-8 bytes:
	// what ext4, APFS and NTFS (in characters) allow for one name.
	MaxFilenameBytes = 255
	// maxKeptExtension is the longest extension kept whole when a long
	// name is shortened; anything longer is not an extension worth saving.
	maxKeptExtension = 32
)

// SanitizeMetadata returns md with its filename replaced by
// SanitizeFilename's result and the declared one kept under
// OriginalFilenameKey, or nil when there is no filename or it is already
// safe. Metadata that is not text never gets here: Policy.CheckCreate
// refuses it.
func SanitizeMetadata(md map[string]string) map[string]string {
	name, ok := md["filename"]
	if !ok {
		return nil
	}
	safe := SanitizeFilename(name)
	if safe == name {
		return nil
	}
	out := maps.Clone(md)
	out["filename"] = safe
	out[OriginalFilenameKey] = name
	return out
}

// SanitizeFilename makes a client's filename safe to hand to anyone who
// saves the file under it, on any common file system:
//
//   - invalid UTF-8 becomes "_"; control characters (NUL included), bidi
//     controls (which make "exe.txt" out of "txt.exe"), line and paragraph
//     separators and BOMs are removed;
//   - only the last path component is kept ("/" and "\" both separate:
//     clients send "C:\Users\me\a.pdf" as well as "../x"), skipping
//     components that name no file (".", "..", empty);
//   - surrounding spaces and trailing dots are trimmed (Windows drops them);
//   - the other characters Windows forbids (< > : " | ? *) become "_";
//   - Windows device names (CON, PRN, AUX, NUL, COM0-9, LPT0-9, also with
//     an extension or in any case) get a "_" in front;
//   - the result is cut to MaxFilenameBytes at a character boundary,
//     keeping a short extension;
//   - an empty result becomes FallbackFilename.
func SanitizeFilename(name string) string {
	name = strings.ToValidUTF8(name, "_")
	name = strings.Map(func(r rune) rune {
		switch {
		case invisible(r):
			return -1
		case strings.ContainsRune(`<>:"|?*`, r):
			return '_'
		}
		return r
	}, name)

	base := ""
	for part := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if p := trimName(part); p != "" {
			base = p
		}
	}
	if base == "" {
		return FallbackFilename
	}
	if reservedName(base) {
		base = "_" + base
	}
	if len(base) > MaxFilenameBytes {
		ext := path.Ext(base)
		if len(ext) > maxKeptExtension || len(ext) == len(base) {
			ext = ""
		}
		stem := cutBytes(base[:len(base)-len(ext)], MaxFilenameBytes-len(ext))
		base = trimName(stem + ext)
	}
	if base == "" {
		return FallbackFilename
	}
	return base
}

// invisible reports whether r is removed from filenames: it is invisible
// or changes how the characters around it are shown.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) ||
		unicode.In(r, unicode.Zl, unicode.Zp) || r == '\uFEFF'
}

// trimName trims surrounding white space and trailing dots: Windows drops
// trailing dots and spaces, so "a.txt." and "a.txt" are the same file
// there, and "." and ".." become empty.
func trimName(s string) string {
	return strings.TrimRightFunc(strings.TrimSpace(s), func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
}

// reservedName reports whether Windows takes name for a device: the part
// before the first dot, ignoring case and trailing spaces, is CON, PRN,
// AUX, NUL, CONIN$, CONOUT$, or COM or LPT followed by a digit (0-9 or a
// superscript 1-3).
func reservedName(name string) bool {
	stem, _, _ := strings.Cut(name, ".")
	stem = strings.ToUpper(strings.TrimRightFunc(stem, unicode.IsSpace))
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if rest, ok := strings.CutPrefix(stem, "COM"); ok {
		return deviceNumber(rest)
	}
	if rest, ok := strings.CutPrefix(stem, "LPT"); ok {
		return deviceNumber(rest)
	}
	return false
}

func deviceNumber(s string) bool {
	switch s {
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
		return true
	}
	return false
}

// cutBytes returns the longest prefix of s of at most n bytes that does not
// split a character.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
