package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	// HeaderID carries the event id, the receiver's idempotency key.
	HeaderID = "Webhook-Id"
	// HeaderTimestamp is the time of this attempt, in Unix seconds.
	HeaderTimestamp = "Webhook-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256 of
	// timestamp + "." + body under the shared secret.
	HeaderSignature = "Webhook-Signature"
)

// DefaultTolerance is how far a timestamp may be from the receiver's clock
// when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

var (
	// ErrMalformed: a missing or unparsable timestamp or signature header.
	ErrMalformed = errors.New("webhook: malformed timestamp or signature header")
	// ErrStale: the timestamp is further from now than the tolerance, as in
	// a replayed request.
	ErrStale = errors.New("webhook: timestamp outside the tolerance")
	// ErrMismatch: no v1 signature in the header matches the body.
	ErrMismatch = errors.New("webhook: signature mismatch")
)

// Sign returns the Webhook-Signature value for body sent at timestamp.
func Sign(secret string, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a delivery as a receiver must: timestamp and
// signatureHeader are the Webhook-Timestamp and Webhook-Signature headers,
// body the raw request body (before any JSON parsing). The timestamp must be
// within tolerance of now (DefaultTolerance when tolerance <= 0), and one of
// the space-separated "v1=<hex>" entries of the header must equal the
// HMAC-SHA256 of timestamp + "." + body, compared in constant time; entries
// of other versions are ignored, so that a header may carry several
// signatures while a secret is rotated.
func Verify(secret, timestamp, body, signatureHeader string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || timestamp != strconv.FormatInt(ts, 10) {
		// The signed text is the header as sent; a canonical number keeps
		// "0100" and "100" from being two spellings of one time.
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, timestamp, []byte(body))
	found := false
	for _, entry := range strings.Fields(signatureHeader) {
		v, sig, ok := strings.Cut(entry, "=")
		if !ok || v != "v1" {
			continue
		}
		found = true
		got, err := hex.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	if !found {
		return ErrMalformed
	}
	return ErrMismatch
}
