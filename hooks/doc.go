// Package hooks holds intake's upload policy as plain functions: the
// pre-create checks that run before a byte is accepted (today: the limits a
// bearer token carries; later: quotas, metadata and type rules) and, later,
// the finalization steps that run once after the last byte. They know
// nothing of HTTP or tusd — they take values and return a Refusal that says
// which status and message the client gets — so they are table-tested
// without a server; pkg/server wires them into tusd's callbacks.
package hooks
