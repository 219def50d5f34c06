// Package protocol makes the tusd handler answer every MUST of tus 1.0.0 for
// the extensions intake advertises (creation, creation-with-upload,
// creation-defer-length, termination, concatenation), and sends every error
// as jsonerr's JSON.
//
// Wrap is a thin layer around tusd's handler. Before tusd runs, it rejects
// requests tusd would accept or answer wrongly. Around tusd, it rewrites
// tusd's plain-text error bodies ("ERR_MISMATCHED_OFFSET: mismatched
// offset") into {"error":{"code":"mismatched_offset","message":"..."}}.
//
// Deviations of tusd v2.10.1 it fixes, each with the sentence of the spec:
//
//   - 412 without Tus-Version: "it MUST respond with the 412 Precondition
//     Failed status and MUST include the Tus-Version header into the response".
//   - HEAD (and anything but OPTIONS and GET) accepted without Tus-Resumable:
//     "The Tus-Resumable header MUST be included in every request and response
//     except for OPTIONS requests". GET is tusd's download, not tus, and stays
//     open to browsers.
//   - PATCH with a wrong Content-Type gets 400: "All PATCH requests MUST use
//     Content-Type: application/offset+octet-stream, otherwise the server
//     SHOULD return a 415 Unsupported Media Type status".
//   - Malformed Upload-Metadata silently dropped or merged (bad base64, keys
//     with spaces, duplicate keys): "The key MUST NOT contain spaces and
//     commas and MUST NOT be empty. [...] the value MUST be Base64 encoded.
//     All keys MUST be unique." Now 400 invalid_metadata; base64 must be
//     canonical (what HEAD echoes back) and keys visible ASCII ("SHOULD be
//     ASCII"). Larger than Options.MaxMetadataSize: 431 metadata_too_large.
//     Several Upload-Metadata lines are joined into one list (tusd reads the
//     first only).
//   - Final upload with Upload-Length or Upload-Defer-Length accepted: "The
//     Client MUST NOT include the Upload-Length header in the final upload
//     creation." Now 400 invalid_upload_length.
//   - Final upload naming a finished non-partial upload accepted: "Multiple
//     partial uploads are concatenated into a final upload". Not fixed here:
//     pkg/storage refuses it (400 invalid_concat) from the catalog, before
//     anything is created.
//   - Upload-Offset / Upload-Length read with strconv.ParseInt ("+5", "-0"):
//     "The value MUST be a non-negative integer." Now plain digits only, and
//     a repeated header is 400 instead of tusd reading the first.
//   - HEAD errors without Cache-Control: "The Server MUST prevent the client
//     and/or proxies from caching the response by adding the Cache-Control:
//     no-store header to the response." Every HEAD and every error has it.
//   - Tus-Resumable is set on every response, including intake's own errors.
//   - An upload over the maximum size declared where tusd checks late: a
//     deferred-length creation-with-upload body larger than Options.MaxSize
//     (tusd creates the upload, then answers 413 without its Location), and
//     a PATCH declaring Upload-Length over it (tusd: 400). "If the length of
//     the upload exceeds the maximum [...] the Server MUST respond with the
//     413 Request Entity Too Large status." Both now 413 max_size_exceeded.
//   - Creation-with-upload with a body longer than Upload-Length creates the
//     upload, then answers 413 without its Location. Now refused before
//     creation (413 upload_size_exceeded).
//   - tusd's lock timeout is a 500 (ERR_LOCK_TIMEOUT). Now 423 lock_timeout,
//     which tus clients retry. tusd sends HEAD errors without a body, so
//     this layer cannot see a HEAD's; the server's locker returns a 423
//     handler.Error itself (pkg/server, pkg/pglock).
//   - 5xx bodies echo the store's err.Error() (paths, DSNs). Now a generic
//     message; the detail goes to Options.Logger.
//   - A download that fails midway gets tusd's error text appended to the
//     file. Now the connection is cut (http.ErrAbortHandler), so the client
//     sees a truncated body instead of a corrupt one.
//
// Left as tusd does it, on purpose:
//
//   - X-HTTP-Method-Override is honoured on POST only: a GET or HEAD must
//     never become a PATCH or DELETE.
//   - HEAD echoes Upload-Metadata and Upload-Concat re-serialized (any order;
//     absolute URLs), not byte for byte "as received": same pairs and uploads.
//   - A chunked PATCH body longer than the upload: tusd stores what fits,
//     then answers 413 ("The Server SHOULD always attempt to store as much
//     of the received data as possible"). A chunked creation-with-upload
//     body that overflows leaves an upload whose URL the client never got;
//     expiry removes it (a body with Content-Length is refused up front).
//
// Wrap must run directly around tusd (http.StripPrefix may sit on either
// side), with tusd's EnableExperimentalProtocol off. Its own rejections carry
// no CORS headers, so CORS belongs outside Wrap rather than in tusd.
//
// What it must never do:
//
//   - buffer a successful body: downloads stream gigabytes, and Flush,
//     ReadFrom and http.ResponseController (Unwrap) reach the connection;
//   - re-implement tusd: it checks request syntax and renders errors, and
//     anything about upload state (offsets, locks, lengths) is tusd's;
//   - send internal detail in an error message, or a body to a HEAD.
package protocol
