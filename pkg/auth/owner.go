// Package auth decides who is making a request. Every upload belongs to the
// owner who created it; the owner travels in the request context from the
// authentication middleware to the store, which refuses every other owner.
//
// The anonymous owner is "": the embedded default runs without
// authentication and all of its uploads belong to "".
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
