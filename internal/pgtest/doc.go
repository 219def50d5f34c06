// Package pgtest gives tests a PostgreSQL schema of their own.
//
// URL(t) creates a fresh, uniquely named schema in the database named by
// TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable),
// drops it when the test ends, and returns a URL whose search_path runtime
// parameter selects it; pgx sends that parameter at connection startup, so
// every connection opened from the URL lives in the schema. Tests that share
// the database therefore never see each other's tables and may all run in
// parallel, and migrations run for real in each schema.
//
// When PostgreSQL cannot be reached the test is skipped, unless CI=true: in
// CI a skipped database test would hide a broken pipeline, so it fails.
//
// This package is for tests only. It must never be imported by non-test
// code, never create anything outside the schemas it drops, and never print
// the password of TEST_DATABASE_URL.
package pgtest
