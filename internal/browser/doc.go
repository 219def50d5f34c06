// Package browser runs Uppy, the upload widget web apps embed, in a real
// headless Chromium from Go tests, so that end-to-end tests prove intake
// works for browsers: CORS preflights, headers a page's script may read,
// bearer tokens, and the errors Uppy can and cannot see.
//
// NewPage(t) serves a page (uppy.html, embedded) from an httptest server on
// a loopback port of its own, so that its origin is never the origin of the
// intake under test. The page loads Uppy's prebuilt browser bundle
// (dist/uppy.min.js of the uppy package, which holds @uppy/core and
// @uppy/tus; no bundler involved) and defines run(input). Page.Upload(t,
// opts) makes the page fetch opts.Data from its own origin, add it to Uppy
// as a file and upload it with @uppy/tus; it returns the upload URL, the
// requests the page made and the console (Chromium reports CORS refusals
// there), and TryUpload returns Uppy's upload-error as an *UploadError
// whose Status is 0 when the browser withheld the response.
//
// driver.mjs does the browser side with playwright-core: it launches
// Chromium with a fresh profile and flags fit for a closed network, opens
// the page, awaits run and prints one JSON line. It runs with HOME and
// TMPDIR in the test's temporary directory, bounded by the upload's
// timeout; on the Go side's deadline node gets SIGTERM, on which Playwright
// closes Chromium, and a kill 10s later.
//
// package.json pins uppy, and the @uppy/core and @uppy/tus versions its
// bundle is built from, and playwright-core, to exact versions;
// package-lock.json pins every package by integrity hash. internal/
// nodemodules installs them, like internal/jsclient's, into
// tools/_node/<hash>/ with `npm ci` at most once per test binary. Each
// upload checks that the bundle reports the pinned @uppy/core and @uppy/tus
// versions.
//
// Chromium is looked up as $INTAKE_CHROMIUM or, on PATH, chromium,
// chromium-browser, google-chrome-stable or google-chrome; it is never
// downloaded (Debian: apt-get install chromium). When it, node (20 or
// later) or npm is missing the test is skipped, unless CI=true: in CI a
// skipped browser test would hide a broken pipeline, so it fails.
//
// To bump Uppy: set uppy in package.json, and @uppy/core and @uppy/tus to
// the exact versions that uppy version depends on (npm view uppy@X
// dependencies), then in this directory run
//
//	npm install --package-lock-only --ignore-scripts --omit-lockfile-registry-resolved=false
//
// and commit both files; TestLockfile checks the result.
//
// This package is for tests only. It must never be imported by non-test
// code, never write outside tools/_node, the test's temporary directories
// and npm's cache, never run package install scripts or download a
// browser, and never leave a node or Chromium process running after the
// test that started it.
package browser
