// Package config is intake's one description of its settings: the Config
// struct, its defaults, the command-line flags, the INTAKE_* environment
// variables and the optional YAML file, and the rules a valid configuration
// follows. Precedence is flag > environment > file > default, and every
// source goes through the flag's own parser, so "10GiB" means the same thing
// wherever it is written.
//
// config/intake.example.yaml documents every key with its default; a test
// keeps it identical to what RegisterFlags registers.
//
// This package must never open a database, create directories or log: it
// describes what to do, the commands do it. Its errors must never contain the
// database URL, which may hold a password; use Redacted before logging a
// Config.
package config
