package hooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Usage reports how many bytes an owner holds, for quotas. The catalog
// implements it.
type Usage interface {
	// OwnerUsage sums the owner's sessions: a complete session counts its
	// size (every session, even when deduplication stores its content
	// once), a receiving one its declared size, or its committed offset
	// while its length is deferred. Terminated, failed and rejected
	// sessions count nothing.
	OwnerUsage(ctx context.Context, owner string) (int64, error)
}

// Policy is the server's own pre-create policy, from its configuration.
// Unlike Limits, which a token carries, it applies to every request. The
// zero value allows everything.
type Policy struct {
	// AllowedTypes are patterns (see TypeAllowed) the declared filetype
	// must match, a hint checked before any byte arrives; none means any.
	AllowedTypes []string
	// RequiredMetadata are keys every upload but a partial one must
	// declare with a non-empty value.
	RequiredMetadata []string
	// QuotaBytes caps what one owner may hold, stored or in flight; 0
	// means no quota. Usage must be set with it.
	QuotaBytes int64
	Usage      Usage
}

// CheckCreate decides whether owner may create u under the policy: its
// metadata being text, its declared type, its required metadata, then the
// quota. The rules that need no catalog query come first, so a request
// refused anyway costs none. An error means the owner's usage could not be
// read; the caller must answer with a retryable error, never let the
// upload through.
//
// A deferred-length upload counts only the data its creation request
// carries (creation-with-upload): its length meets the quota when it is
// declared (see CheckLength).
func (p Policy) CheckCreate(ctx context.Context, owner string, u NewUpload) (*Refusal, error) {
	if r := checkText(u.Metadata); r != nil {
		return r, nil
	}
	if r := checkType(p.AllowedTypes, u, "this server"); r != nil {
		return r, nil
	}
	if r := checkRequired(p.RequiredMetadata, u); r != nil {
		return r, nil
	}
	if !u.Deferred {
		return p.checkQuota(ctx, owner, 0, u.Size, false)
	}
	return p.checkQuota(ctx, owner, 0, u.Body, true)
}

// CheckLength decides whether owner's deferred-length upload may declare
// length. counted is what Usage already counts for that upload (its
// committed offset), which the declared length replaces. The store calls
// it when the length is declared; errors as for CheckCreate.
func (p Policy) CheckLength(ctx context.Context, owner string, counted, length int64) (*Refusal, error) {
	return p.checkQuota(ctx, owner, counted, length, false)
}

// checkQuota decides whether owner may add size bytes to what Usage
// reports, less counted; an open-ended (deferred) upload also needs room
// for at least one more byte. Two creations racing each other may both
// pass: the quota can be overshot by what is created at the same moment.
func (p Policy) checkQuota(ctx context.Context, owner string, counted, size int64, open bool) (*Refusal, error) {
	if p.QuotaBytes <= 0 {
		return nil, nil
	}
	if p.Usage == nil {
		return nil, errors.New("quota set without a usage source")
	}
	used, err := p.Usage.OwnerUsage(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("error reading owner usage: %w", err)
	}
	used = max(used-counted, 0)
	if open && used >= p.QuotaBytes {
		return &Refusal{http.StatusRequestEntityTooLarge, "quota_exceeded",
			fmt.Sprintf("your %s quota is used up (0 bytes left); %s", humanBytes(p.QuotaBytes), freeSpace)}, nil
	}
	return QuotaRefusal(p.QuotaBytes, used, size), nil
}

const freeSpace = "delete uploads you no longer need or ask for more space"

// QuotaRefusal decides whether size more bytes fit in quota when used are
// taken, and says how much is left when they do not.
func QuotaRefusal(quota, used, size int64) *Refusal {
	left := max(quota-used, 0)
	if size <= left {
		return nil
	}
	return &Refusal{http.StatusRequestEntityTooLarge, "quota_exceeded",
		fmt.Sprintf("this upload needs %s, but only %s of your %s quota is left; %s",
			humanBytes(size), humanBytes(left), humanBytes(quota), freeSpace)}
}

// checkText refuses metadata values that are not UTF-8 text without NUL
// bytes: the catalog keeps metadata as JSON text, and whoever reads a
// filename back must not meet a NUL. Refusing here, before the store
// creates anything, is cheaper than the catalog refusing later.
func checkText(md map[string]string) *Refusal {
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if v := md[k]; !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return &Refusal{http.StatusBadRequest, "invalid_metadata",
				fmt.Sprintf("the value of metadata key %q is not text: metadata values must be UTF-8 without NUL bytes", k)}
		}
	}
	return nil
}

// checkRequired refuses an upload that lacks a required metadata value.
// Partial uploads are exempt: tus-js-client and Uppy send them without
// metadata, and the final upload that joins them is checked.
func checkRequired(keys []string, u NewUpload) *Refusal {
	if len(keys) == 0 || u.IsPartial {
		return nil
	}
	var missing []string
	for _, k := range keys {
		if u.Metadata[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &Refusal{http.StatusBadRequest, "metadata_missing",
		fmt.Sprintf("Upload-Metadata lacks %s; this server requires a value for each of %s",
			strings.Join(missing, ", "), strings.Join(keys, ", "))}
}

// humanBytes renders n for a person: "900 bytes", or "1.5 MiB (1572864
// bytes)" so the exact figure is there too.
func humanBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", v, units[i], n)
}
