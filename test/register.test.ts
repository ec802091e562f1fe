import t from 'tap'
import { DualBrokerError, type DualBroker, tierPlugin } from '../src/index.js'
import { status } from '../plugins/status/index.js'
import { sysTopics } from '../plugins/sys-topics.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { startTier } from './support/tier.js'

// README "Plugins of the tier": fastify's register, on a tier attached to real brokers.

t.test('register resolves with what the plugin returns; close closes plugins last first, then the tier', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const { tier } = await startTier(t, b1.url, b2.url)
  const closed: string[] = []
  const recorder = (name: string) => tierPlugin(name, (given: DualBroker, options: { tag: string }) => {
    t.equal(given, tier, `${name} gets the tier`)
    return { tag: options.tag, close: async () => { closed.push(name); t.equal(given.state.brokers.broker1.state, 'up', `${name} closes while the tier still runs`) } }
  })
  const first = await tier.register(recorder('first'), { tag: 'a' })
  const second = await tier.register(recorder('second'), { tag: 'b' })
  t.same([first.tag, second.tag], ['a', 'b'], 'what each plugin returned')
  const healthLinkGone = new Promise<string>((resolve) => b1.aedes.on('clientDisconnect', (client) => { if (client.id.includes('dual-broker-health')) resolve(client.id) }))
  await tier.close()
  t.same(closed, ['second', 'first'], 'closed in the reverse order of registration')
  t.match(await healthLinkGone, /dual-broker-health/, 'and then the tier: its health link at Broker1 ended')
})

t.test('a name registers once; a plugin that throws is not kept; a closing tier takes none', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const { tier } = await startTier(t, b1.url, b2.url)
  const plugin = tierPlugin('once', () => ({ close () {} }))
  await tier.register(plugin)
  await t.rejects(tier.register(plugin), { name: 'DualBrokerError', code: 'DUALBROKER_ERR_PLUGIN_REGISTERED', message: /plugin once/ })
  let attempts = 0
  const flaky = tierPlugin('flaky', () => {
    if (attempts++ === 0) throw new Error('not yet')
    return 'ready'
  })
  await t.rejects(tier.register(flaky), /not yet/, 'the plugin\'s own error')
  t.equal(await tier.register(flaky), 'ready', 'and its name is free again')
  const closing = tier.close()
  const late = await tier.register(tierPlugin('late', () => {})).catch((err: unknown) => err)
  t.type(late, DualBrokerError)
  t.equal((late as DualBrokerError).code, 'DUALBROKER_ERR_CLOSING')
  await closing
})

t.test('the operations plugins registered on an embedded tier: served while it runs, gone when it closes', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const { tier, url } = await startTier(t, b1.url, b2.url)
  const sys = await tier.register(sysTopics, { intervalMs: 50 })
  const http = await tier.register(status, { port: 0 })
  const health = await fetch(`${http.url}/health`)
  t.equal(health.status, 200, '/health of the registered status server')
  await sys.refresh()
  const watcher = await connectClient(t, url, { clientId: 'sys-watcher' })
  const retained = new Promise<string>((resolve) => watcher.on('message', (_topic, payload) => resolve(payload.toString())))
  await watcher.subscribeAsync('$SYS/dual-broker/mode')
  t.equal(await retained, 'normal', 'the $SYS topics of the registered plugin')
  watcher.end(true)
  await tier.close()
  await t.rejects(fetch(`${http.url}/health`), 'the status server closed with the tier')
})
