// Package catalogtest is the conformance suite every catalog.Catalog must
// pass. Each implementation's tests call Run with a constructor for an
// empty, migrated catalog; the suite exercises every method, every error and
// every state transition, the way intake's handlers rely on them.
//
// Atomic is the one check that needs the backend's help: it breaks the
// outbox through a hook to show that a transition and its event commit
// together or not at all. The MigrateDown checks roll a backend's schema
// back under data and read what the old schema holds through Raw, the
// backend's plain SQL; FillBlobs and FillEvents, with their checks, are
// the fixtures they and each backend's own migration tests share.
//
// A catalog that passes Run behaves like any other to its callers. The
// suite must therefore test only the documented contract of package catalog,
// never one implementation's internals, and must never skip a check for one
// backend: a difference in behaviour is a bug in that backend.
package catalogtest
