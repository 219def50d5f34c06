// Package server assembles intake: the catalog, the store wrapped around
// tusd's backend, the lock provider, the tus handler behind the protocol
// layer, intake's own HTTP API, health and metrics endpoints, and the HTTP
// server with its graceful shutdown.
//
// It holds no upload logic of its own; it only wires the pieces together and
// decides their order at start and at shutdown (the database closes last).
package server
