// Package deploytest holds the tests of intake's container deploy: the
// Dockerfile, docker-compose.yml and config/compose.env. No Docker engine is
// needed; the tests read the files and hold them to what a deploy needs to
// work (real settings, health checks, pinned images, matching credentials
// and ports), so that the deploy is correct by construction.
//
// The package has no code of its own and must never be imported.
package deploytest
