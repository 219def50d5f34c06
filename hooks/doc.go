// Package hooks will hold intake's upload policy as plain functions over
// small interfaces: the pre-create checks (limits, quotas, metadata and type
// rules) that run before a byte is accepted, and the finalization steps
// (verify, sniff, dedup, record) that run once after the last byte. They are
// table-tested without a server; pkg/server wires them into tusd's callbacks
// and pkg/storage.
//
// It holds no policy yet: today the only pre-create rule is the maximum size,
// which tusd enforces from --max-size, and finalization is the catalog's
// move to complete in pkg/storage. Policy arrives here with the
// pre-create/finalize work rather than being scattered over the server.
package hooks
