// @segment/analytics-next in Debian's headless Chromium, driven by
// playwright-core, from a page on another origin than the gateway
// (driven by test_sdk_js.py). argv: pageUrl; the page does the calls.
// Prints "ready" once the calls are made; keeps the page (and the SDK's
// retries) alive until stdin closes. Browser console errors go to stderr.
const { chromium } = require('playwright-core')

const [pageUrl] = process.argv.slice(2)
;(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  })
  const page = await browser.newPage()
  const seen = { preflights: 0, retries: 0, statuses: {} }
  page.on('console', (msg) => process.stderr.write(`[console] ${msg.text()}\n`))
  page.on('request', (req) => {
    if (req.method() === 'OPTIONS') seen.preflights++
    if (req.headers()['x-retry-count']) seen.retries++
  })
  page.on('pageerror', (err) => process.stderr.write(`[pageerror] ${err}\n`))
  page.on('response', (res) => {
    // A retry (X-Retry-Count, which needs a CORS preflight) that got through.
    if (res.request().headers()['x-retry-count']) console.log(`retry ${res.status()}`)
    if (res.status() >= 400) process.stderr.write(`[http ${res.status()}] ${res.request().method()} ${res.url()}\n`)
    if (res.url().includes('/v1/')) seen.statuses[res.status()] = (seen.statuses[res.status()] || 0) + 1
  })
  page.on('requestfailed', (req) => process.stderr.write(`[failed] ${req.url()} ${req.failure().errorText}\n`))
  await page.goto(pageUrl)
  await page.waitForFunction(() => window.__called === true, null, { timeout: 20000 })
  console.log('ready')
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve))
  console.log(JSON.stringify(seen))
  await browser.close()
})().catch((err) => {
  console.error(err)
  process.exit(1)
})
