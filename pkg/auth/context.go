package auth

import "context"

type claimsKey struct{}

// WithClaims returns a context carrying a verified token's claims and its
// owner.
func WithClaims(ctx context.Context, c Claims) context.Context {
	return WithOwner(context.WithValue(ctx, claimsKey{}, c), c.Owner)
}

// ClaimsFrom returns the claims of the request's token; ok is false for
// anonymous requests (--auth none).
func ClaimsFrom(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}
