// Package webhook delivers the catalog's outbox events to one HTTP
// receiver: signed JSON POSTs, retried with exponential backoff and full
// jitter until an event is older than the maximum age, then dead-lettered.
//
// Delivery is at least once. The event id travels as the Webhook-Id header
// and receivers deduplicate on it; a receiver never sees the same event from
// two dispatchers at the same time, because each claims its events under a
// lease in the catalog (SKIP LOCKED on PostgreSQL) and does not start a
// request its lease might not cover. One dispatcher sends in order of
// occurrence and holds the queue while the receiver is unavailable, so a
// backlog drains in order once it is back.
//
// Verify is the reference implementation of the signature check the README
// documents for receivers.
//
// This package must never write to the catalog except through the outbox
// methods of EventStore, never put the receiver's URL (which may hold a
// token) into an error it records, and never hold a request open past its
// timeout.
package webhook
