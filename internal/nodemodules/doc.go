// Package nodemodules installs a pinned set of npm packages for the test
// harnesses that drive JavaScript clients (internal/jsclient,
// internal/browser).
//
// A Spec names files embedded in the harness: package.json, which pins
// every dependency to an exact version, package-lock.json, which pins every
// package by integrity hash, and the scripts that import them. Install puts
// the files, with node_modules from `npm ci`, into tools/_node/<hash>/ in
// the module root (git-ignored, like tools/bin), where <hash> covers all
// the files: editing any of them installs afresh, and an install that is
// there is used without running npm at all. An install is built in a
// staging directory and renamed into place, so a killed run or two test
// binaries installing at once never leave a half-made one that counts as
// done. Delete tools/_node to reclaim the space of old versions.
//
// Install reports a missing or too old node, or a missing npm, as
// ErrNoNode, which the harness turns into a skip (or a failure when
// CI=true); anything else, such as an npm ci that fails offline with an
// empty npm cache, is an error with npm's output.
//
// CheckLockfile is the policy each harness's TestLockfile applies: exact
// versions, a lockfile that agrees with package.json, and only tarballs
// from registry.npmjs.org with sha512 integrity hashes, so that npm ci
// installs exactly what was reviewed.
//
// This package is for tests only. It must never be imported by non-test
// code, never write outside tools/_node (or the user cache directory when
// there is no module root) apart from npm's own cache, and never run
// package install scripts.
package nodemodules
