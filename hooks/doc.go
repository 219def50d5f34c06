// Package hooks holds intake's upload policy as plain functions: the
// pre-create checks that run before a byte is accepted — the limits a
// bearer token carries (Limits), the server's own rules (Policy: declared
// type, required metadata, per-owner quota) and the filename clean-up
// (SanitizeMetadata) — and, later, the finalization steps that run once
// after the last byte. They know nothing of HTTP or tusd — they take values
// and small interfaces (Usage) and return a Refusal that says which status
// and message the client gets — so they are table-tested without a server;
// pkg/server and pkg/storage wire them into tusd's callbacks.
//
// A Refusal's message is shown to people (tus-js-client puts the response
// body in its error): it must say what to change, and never hold internal
// detail such as hosts, paths or queries.
package hooks
