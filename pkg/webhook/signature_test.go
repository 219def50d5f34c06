package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/webhook"
)

const secret = "whsec-0123456789abcdef0123456789abcdef"

// TestSignMatchesRecipe: the signature is what the README tells receivers
// to compute, written out here with the standard library alone.
func TestSignMatchesRecipe(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"ev1","type":"upload.created"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("1767225600." + string(body)))
	want := "v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := webhook.Sign(secret, 1767225600, body); got != want {
		t.Errorf("Sign = %s; want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1767225600, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := `{"id":"ev1","type":"upload.completed","upload":{"id":"u1"}}`
	good := webhook.Sign(secret, now.Unix(), []byte(body))
	at := func(d time.Duration) (string, string) {
		t := now.Add(d).Unix()
		return strconv.FormatInt(t, 10), webhook.Sign(secret, t, []byte(body))
	}
	oldTS, oldSig := at(-6 * time.Minute)
	futureTS, futureSig := at(6 * time.Minute)
	edgeTS, edgeSig := at(-5 * time.Minute)

	tests := []struct {
		name                     string
		secret, ts, body, header string
		tolerance                time.Duration
		want                     error
	}{
		{"valid", secret, ts, body, good, 0, nil},
		{"valid among other signatures", secret, ts, body, "v2=abc v1=" + strings.Repeat("0", 64) + " " + good, 0, nil},
		{"upper-case hex", secret, ts, body, "v1=" + strings.ToUpper(strings.TrimPrefix(good, "v1=")), 0, nil},
		{"at the tolerance", secret, edgeTS, body, edgeSig, 0, nil},
		{"wrong secret", "another-secret-0123456789abcdef0123", ts, body, good, 0, webhook.ErrMismatch},
		{"body changed", secret, ts, body + " ", good, 0, webhook.ErrMismatch},
		{"body re-encoded", secret, ts, strings.ReplaceAll(body, ":", ": "), good, 0, webhook.ErrMismatch},
		{"timestamp changed", secret, strconv.FormatInt(now.Unix()+1, 10), body, good, 0, webhook.ErrMismatch},
		{"truncated signature", secret, ts, body, good[:40], 0, webhook.ErrMismatch},
		{"not hex", secret, ts, body, "v1=" + strings.Repeat("z", 64), 0, webhook.ErrMismatch},
		{"replayed later", secret, oldTS, body, oldSig, 0, webhook.ErrStale},
		{"from the future", secret, futureTS, body, futureSig, 0, webhook.ErrStale},
		{"replayed within a wider tolerance", secret, oldTS, body, oldSig, 10 * time.Minute, nil},
		{"replayed past a narrower tolerance", secret, edgeTS, body, edgeSig, time.Minute, webhook.ErrStale},
		{"no timestamp", secret, "", body, good, 0, webhook.ErrMalformed},
		{"timestamp not a number", secret, "yesterday", body, good, 0, webhook.ErrMalformed},
		// The signed text is the header as sent: another spelling of the
		// same number must not verify.
		{"timestamp with leading zero", secret, "0" + ts, body, good, 0, webhook.ErrMalformed},
		{"timestamp with plus", secret, "+" + ts, body, good, 0, webhook.ErrMalformed},
		{"no signature", secret, ts, body, "", 0, webhook.ErrMalformed},
		{"only other versions", secret, ts, body, "v0=" + strings.TrimPrefix(good, "v1="), 0, webhook.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.ts, tt.body, tt.header, now, tt.tolerance)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v; want %v", err, tt.want)
			}
		})
	}
}
