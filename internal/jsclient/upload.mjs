// One upload with tus-js-client's Node.js API, for the Go harness in this
// directory (see doc.go). It reads its options as JSON on stdin:
//
//   {"endpoint": "http://127.0.0.1:PORT/files/", "file": "/abs/path",
//    "chunkSize": 0, "parallelUploads": 0, "metadata": {}, "headers": {}}
//
// and writes one JSON line to stdout: {"url": "...", "retries": [...]} with
// exit status 0 when onSuccess ran, {"error": "...", "retries": [...]} with
// exit status 1 when onError ran. "error" is tus-js-client's own message,
// which quotes the server's response body. "retries" holds the message of
// every error tus-js-client retried after. Anything else (a crash, bad
// input) exits non-zero without that line and explains itself on stderr.
import { createReadStream } from 'node:fs'
import { text } from 'node:stream/consumers'

import tus from 'tus-js-client'

const opts = JSON.parse(await text(process.stdin))
const retries = []

function finish(result, code) {
  // stdout is a pipe, where writes are asynchronous: exit only once the line
  // is out. Exiting at all is needed because keep-alive sockets would hold
  // the process open for seconds.
  process.stdout.write(`${JSON.stringify({ ...result, retries })}\n`, () => process.exit(code))
}

// A fs.ReadStream with a path becomes tus-js-client's FileSource, which
// knows the size and can be sliced: no uploadSize and no chunkSize needed,
// and parallelUploads works on it.
const upload = new tus.Upload(createReadStream(opts.file), {
  endpoint: opts.endpoint,
  // Infinity is tus-js-client's default: the whole rest in one PATCH.
  chunkSize: opts.chunkSize > 0 ? opts.chunkSize : Number.POSITIVE_INFINITY,
  parallelUploads: opts.parallelUploads > 1 ? opts.parallelUploads : 1,
  metadata: opts.metadata ?? {},
  headers: opts.headers ?? {},
  retryDelays: [0, 500, 1000],
  // The default decision, recorded: a retry means the server answered 5xx
  // or dropped a connection, which the caller wants to know about.
  onShouldRetry(err, attempt, options) {
    const retry = tus.defaultOptions.onShouldRetry(err, attempt, options)
    if (retry) {
      retries.push(err.message)
    }
    return retry
  },
  onError(err) {
    finish({ error: err.message }, 1)
  },
  onSuccess() {
    finish({ url: upload.url }, 0)
  },
})
upload.start()
