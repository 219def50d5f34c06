// Package auth decides who is making a request. It verifies bearer tokens
// (JWT: HS256, RS256 or ES256, one algorithm fixed by the configured key, so
// a token never chooses how it is checked), and carries the verified claims
// and the owner identity in the request context from the middleware to the
// store, which binds every upload to the owner who created it and refuses
// every other owner.
//
// The anonymous owner is "": the embedded default runs without
// authentication and all of its uploads belong to "". This package must
// never log or return a token or a key.
package auth

import "context"

type ownerKey struct{}

// WithOwner returns a context carrying the owner identity.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// Owner returns the owner identity carried by ctx, or "" when there is none.
func Owner(ctx context.Context) string {
	o, _ := ctx.Value(ownerKey{}).(string)
	return o
}
