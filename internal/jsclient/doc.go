// Package jsclient drives the real tus-js-client (Node.js) from Go tests, so
// that end-to-end tests prove intake works with the client most tus users
// have, not only with our own pkg/client.
//
// The JavaScript side is three files embedded in the package: package.json
// pins tus-js-client to an exact version, package-lock.json pins every
// dependency by integrity hash, and upload.mjs does one upload with
// tus-js-client's Node.js API. Install(t) puts them, with node_modules from
// `npm ci`, into tools/_node/<hash>/ in the module root (git-ignored, like
// tools/bin), where <hash> covers all three files: editing any of them
// installs afresh, and an install that is there is used without running npm
// at all. An install is built in a staging directory and renamed into place,
// so a killed run or two test binaries installing at once never leave a
// half-made one that counts as done (internal/nodemodules does this for
// every JavaScript harness). Delete tools/_node to reclaim the space of old
// versions.
//
// Upload(t, opts) runs upload.mjs on a file, bounded by a timeout, and
// returns the upload URL; TryUpload also returns the message tus-js-client
// gave onError, which quotes the server's response body.
//
// When node (18 or later) or npm cannot be found the test is skipped, unless
// CI=true: in CI a skipped client test would hide a broken pipeline, so it
// fails. An npm ci that fails (offline with an empty npm cache, say) always
// fails the test, with npm's output.
//
// To bump tus-js-client: change the version in package.json, then in this
// directory run
//
//	npm install --package-lock-only --ignore-scripts --omit-lockfile-registry-resolved=false
//
// and commit both files; TestLockfile checks the result.
//
// This package is for tests only. It must never be imported by non-test
// code, never write outside tools/_node (or the user cache directory when
// there is no module root) apart from npm's own cache, never run package
// install scripts, and never leave a node process running after the test
// that started it.
package jsclient
