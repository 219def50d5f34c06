// Opens one page in headless Chromium and runs one function of it, for the
// Go harness in this directory (see doc.go). It reads its options as JSON on
// stdin:
//
//   {"chromium": "/usr/bin/chromium", "args": ["--no-sandbox", ...],
//    "url": "http://127.0.0.1:PORT/", "input": {...}, "timeoutMs": 60000}
//
// loads url, awaits window.run(input) and writes one JSON line to stdout:
//
//   {"output": <what run returned>, "browser": "<version>",
//    "console": ["error: ...", ...], "requests": [{method, url, status} or
//    {method, url, failure}, ...]}
//
// with exit status 0. "console" holds the page's console messages, the
// browser's own (CORS refusals among them) and uncaught errors; "requests"
// every request the page made, in order, with its response status or why
// it got none (CORS preflights are not requests of the page and are not
// listed). When the page does not load, run throws, or timeoutMs passes,
// the line has "error" in place of "output" and the exit status is 1.
// Anything else (a crash, bad input, no browser) exits non-zero without
// that line and explains itself on stderr.
import { text } from 'node:stream/consumers'

import { chromium } from 'playwright-core'

const opts = JSON.parse(await text(process.stdin))
const consoleLines = []
const requests = []

const browser = await chromium.launch({
  executablePath: opts.chromium,
  args: opts.args,
  headless: true,
  // Playwright makes a fresh profile (--user-data-dir) in TMPDIR and
  // removes it on close; on SIGTERM it closes the browser before exiting.
  timeout: 60_000,
})

let result
try {
  const page = await browser.newPage()
  page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`))
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`))
  page.on('response', (resp) => {
    const req = resp.request()
    requests.push({ method: req.method(), url: req.url(), status: resp.status() })
  })
  page.on('requestfailed', (req) => {
    requests.push({ method: req.method(), url: req.url(), failure: req.failure()?.errorText ?? 'failed' })
  })

  let timer
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done after ${opts.timeoutMs} ms`)), opts.timeoutMs)
  })
  try {
    const output = await Promise.race([
      (async () => {
        const resp = await page.goto(opts.url)
        if (!resp?.ok()) {
          throw new Error(`GET ${opts.url}: status ${resp?.status()}`)
        }
        return page.evaluate((input) => window.run(input), opts.input)
      })(),
      deadline,
    ])
    result = { output }
  } catch (err) {
    result = { error: err.message }
  } finally {
    clearTimeout(timer)
  }
} finally {
  result = { ...result, browser: browser.version(), console: consoleLines, requests }
  await browser.close()
}

// stdout is a pipe, where writes are asynchronous: exit only once the line
// is out.
process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(result.error === undefined ? 0 : 1))
