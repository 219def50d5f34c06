package protocol

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// checkMetadata validates an Upload-Metadata value against the creation
// extension. tusd's parser skips what it cannot read and keeps the last of
// duplicate keys; whatever passes here, tusd parses to the same pairs.
//
// Empty list elements are ignored and spaces around commas are allowed, as
// for any HTTP list field (RFC 9110, section 5.6.1).
func checkMetadata(value string) error {
	seen := make(map[string]struct{})
	for elem := range strings.SplitSeq(value, ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		key, val, hasVal := strings.Cut(elem, " ")
		if key == "" {
			return errors.New("empty key")
		}
		// Keys are echoed raw in HEAD responses, so only visible ASCII is
		// accepted (the spec: "The key SHOULD be ASCII encoded").
		for i := 0; i < len(key); i++ {
			if c := key[i]; c <= ' ' || c >= 0x7f {
				return fmt.Errorf("key %q must be visible ASCII without spaces or commas", key)
			}
		}
		if hasVal {
			if strings.ContainsAny(val, " \t") {
				return fmt.Errorf("key %q: key and value must be separated by exactly one space", key)
			}
			// Strict: the canonical encoding is what HEAD will echo back.
			if _, err := base64.StdEncoding.Strict().DecodeString(val); err != nil {
				return fmt.Errorf("value of key %q is not base64", key)
			}
		}
		if _, dup := seen[key]; dup {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = struct{}{}
	}
	return nil
}
