// Package migrations embeds the catalog's schema changes as plain SQL, one
// directory per dialect (postgres/, sqlite/), in files named
// NNNN_name.up.sql and NNNN_name.down.sql. The catalog packages parse and
// apply them; this package only carries the files.
//
// Every version exists in both dialects under the same name, so the two
// catalogs always have the same schema version. A migration that has been
// released must never be edited: add a new version instead. Files must never
// contain transaction control (BEGIN/COMMIT); the runner wraps each
// migration in its own transaction together with its bookkeeping row.
package migrations
