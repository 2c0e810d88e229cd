// @segment/analytics-node against the gateway (driven by test_sdk_js.py).
// argv: gatewayUrl writeKey prefix; prints one JSON line: {errors: [...]}.
const { Analytics } = require('@segment/analytics-node')

const [url, writeKey, prefix, mode] = process.argv.slice(2)
const errors = []
const analytics = new Analytics({ writeKey, host: url, maxRetries: 10, flushInterval: 200 })
analytics.on('error', (err) => errors.push(String(err && (err.reason || err.code || err))))

const m = (x) => `${prefix}-${x}`
const user = `${prefix}-user`
const anon = `${prefix}-anon-0b0e7c0e-7b1a-4f3e-9a55-1f0c2d3e4a5b`
if (mode === 'stall') {
  for (let i = 0; i < 3; i++) analytics.track({ userId: user, event: 'Stalled', messageId: m(i) })
} else {
  analytics.identify({ userId: user, traits: { email: `${prefix}@example.com` }, messageId: m('identify') })
  analytics.track({ userId: user, event: 'Order Completed', properties: { total: 30 }, messageId: m('track') })
  analytics.page({ userId: user, category: 'Docs', name: 'Home', messageId: m('page') })
  analytics.screen({ userId: user, name: 'Cart', messageId: m('screen') })
  analytics.group({ userId: user, groupId: 'company-1', traits: { plan: 'pro' }, messageId: m('group') })
  analytics.alias({ previousId: anon, userId: user, messageId: m('alias') })
  for (let i = 0; i < 10; i++) analytics.track({ anonymousId: anon, event: 'Viewed', messageId: m(`t${i}`) })
  analytics.identify({ userId: user, traits: { email: 'not-an-email' }, messageId: m('bad') })
}
analytics.closeAndFlush({ timeout: 60000 }).then(() => {
  console.log(JSON.stringify({ errors }))
})
