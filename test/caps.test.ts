import t from 'tap'
import type { MqttClient } from 'mqtt'
import { startAedes } from './support/aedes-broker.js'
import { connackCode, connectClient } from './support/client.js'
import { subscribeLog } from './support/observe.js'
import { record } from './support/recorder.js'
import { startTier } from './support/tier.js'
import { Refusals, newRefusalCounts } from '../src/limits/refusals.js'
import { longerThan } from '../src/limits/terminal-caps.js'

/** The SUBACK codes of one SUBSCRIBE carrying all these filters (QoS 1 each). */
function subscribeAll (client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }])), (error, granted, packet) => {
      if (packet !== undefined) resolve((packet.granted as Array<number | { qos: number }>).map((g) => typeof g === 'number' ? g : g.qos))
      else if (error !== null) reject(error)
      else resolve((granted ?? []).map((g) => g.qos))
    })
  })
}

const filters = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}/${i}`)

t.test('limits.maxClientIdLength: a longer client id is refused with return code 2 and never reaches a broker', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, tier } = await startTier(t, b1.url, b2.url, { plugin: { limits: { maxClientIdLength: 64 } } })
  t.equal(await connackCode(url, { clientId: 'x'.repeat(65) }), 2, '65 bytes: identifier rejected')
  t.equal(await connackCode(url, { clientId: 'é'.repeat(33) }), 2, '33 two-byte characters are 66 bytes: rejected')
  t.equal(await connackCode(url, { clientId: 'x'.repeat(64) }), 0, '64 bytes: accepted')
  t.equal(b1.connectsTotal(), 2 + 1, 'Broker1 saw the health link, the node\'s own session and the accepted terminal only')
  t.equal(tier.state.counters.refused['client-id-length'], 2, 'both refusals counted')
})

t.test('limits.maxFiltersPerSubscribe: the filters past the cap get 0x80, the first ones are granted', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, tier } = await startTier(t, b1.url, b2.url, { plugin: { limits: { maxFiltersPerSubscribe: 4 } } })
  const atBroker1 = subscribeLog(b1.aedes, 'many-filters')
  const terminal = await connectClient(t, url, { clientId: 'many-filters' })
  t.same(await subscribeAll(terminal, filters('f', 6)), [1, 1, 1, 1, 128, 128])
  t.same(await subscribeAll(terminal, filters('g', 4)), [1, 1, 1, 1], 'a SUBSCRIBE at the cap is granted whole')
  t.equal(tier.state.counters.refused['filters-per-subscribe'], 2)
  t.same(atBroker1.flat().sort(), [...filters('f', 4), ...filters('g', 4)].sort(), 'the refused filters never went upstream')
})

t.test('limits.maxSubscriptionsPerTerminal: past the cap new filters get 0x80; existing ones and freed room still work', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, tier } = await startTier(t, b1.url, b2.url, { plugin: { limits: { maxSubscriptionsPerTerminal: 5 } } })
  const terminal = await connectClient(t, url, { clientId: 'many-subs' })
  t.same(await subscribeAll(terminal, filters('s', 3)), [1, 1, 1])
  t.same(await subscribeAll(terminal, filters('t', 4)), [1, 1, 128, 128], 'the 6th and 7th are refused')
  t.same(await subscribeAll(terminal, ['s/0']), [1], 'subscribing again to a held filter is no new subscription')
  await terminal.unsubscribeAsync('s/0')
  t.same(await subscribeAll(terminal, ['u/0']), [1], 'an unsubscribe makes room')
  t.equal(tier.state.counters.refused['subscriptions-per-terminal'], 2)
})

t.test('limits.maxTopicLength: a longer filter gets 0x80, a longer PUBLISH topic closes that connection only', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const atBroker1 = await record(t, b1.url, '#')
  const { url, tier } = await startTier(t, b1.url, b2.url, { plugin: { limits: { maxTopicLength: 100 } } })
  const terminal = await connectClient(t, url, { clientId: 'long-topics' })
  t.same(await subscribeAll(terminal, ['a'.repeat(100), 'b'.repeat(101), '€'.repeat(34)]), [1, 128, 128], '101 bytes and 102 bytes (34 × 3) are refused')
  const closed = new Promise<void>((resolve) => terminal.once('close', () => resolve()))
  terminal.publish('p'.repeat(101), 'x', { qos: 1 })
  await closed
  const other = await connectClient(t, url, { clientId: 'short-topics' })
  await other.publishAsync('q'.repeat(100), 'y', { qos: 1 })
  await atBroker1.waitForTopic('q'.repeat(100))
  t.notOk(atBroker1.messages.some((m) => m.topic.startsWith('p')), 'the over-long topic never went upstream')
  t.equal(tier.state.counters.refused['topic-length'], 3)
})

t.test('longerThan counts UTF-8 bytes, deciding from the length alone where it can', async (t) => {
  t.notOk(longerThan('a'.repeat(10), 0), '0 = no limit')
  t.notOk(longerThan('€'.repeat(10), 30))
  t.ok(longerThan('€'.repeat(11), 32))
  t.ok(longerThan('a'.repeat(33), 32))
  t.notOk(longerThan('😀'.repeat(8), 32), 'surrogate pairs: 4 bytes each')
  t.ok(longerThan('😀'.repeat(9), 32))
})

t.test('refusals are counted each and logged at most once per reason per interval, with the count', async (t) => {
  const lines: Array<{ obj: Record<string, unknown>, msg?: string }> = []
  const log = (obj: object, msg?: string): void => { lines.push({ obj: obj as Record<string, unknown>, msg }) }
  const counts = newRefusalCounts()
  const refusals = new Refusals(counts, { info: log, warn: log, error: log, debug: log }, 100)
  t.teardown(() => refusals.close())
  for (let i = 0; i < 500; i++) refusals.refuse('rate', { remote: `10.0.0.${i % 250}` })
  refusals.refuse('per-source', { remote: '10.0.0.1' })
  t.equal(counts.rate, 500)
  t.equal(counts['per-source'], 1)
  t.same(lines.map((l) => [l.msg, l.obj.reason, l.obj.count]), [['connection refused', 'rate', 1], ['connection refused', 'per-source', 1]], 'the first of each at once')
  t.equal(lines[0]!.obj.limit, 'limits.connectionRatePerSecond', 'the line names the limit')
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.same(lines.slice(2).map((l) => [l.obj.reason, l.obj.count, l.obj.remote]), [['rate', 499, '10.0.0.249']], 'then one line for the rest of the burst')
  await new Promise((resolve) => setTimeout(resolve, 250))
  refusals.refuse('rate', {})
  t.equal(lines.at(-1)!.obj.count, 1, 'after a quiet interval the next one is logged at once')
})
