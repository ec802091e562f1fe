import t from 'tap'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { metricsPlugin } from '../plugins/metrics.js'
import { connectClient } from './support/client.js'
import { FAILOVER_HEALTH, nextEvent, startDurableTier } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { parseMetrics, series } from './support/prometheus.js'

const NAMES = [
  'dualbroker_broker_up', 'dualbroker_broker_protocol_version', 'dualbroker_failovers_total', 'dualbroker_failbacks_total', 'dualbroker_forwarded_total',
  'dualbroker_stored_total', 'dualbroker_replayed_total', 'dualbroker_expired_total', 'dualbroker_dropped_total',
  'dualbroker_refused_total', 'dualbroker_pending_messages', 'dualbroker_pending_bytes', 'dualbroker_clients', 'dualbroker_publish_ack_seconds',
  'dualbroker_sessions_restored_total', 'dualbroker_reconnects_asked_total', 'dualbroker_sessions_lost'
]

t.test('metrics follow a failover, a stored backlog and its replay (README "Operating it")', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startDurableTier(t, b1.url, b2.url, {
    // No re-send of what Broker1 acked just before it died: every count below is then exact.
    health: { ...FAILOVER_HEALTH, resendWindowMs: 0 },
    policies: [{ topic: 'alarms/#', mode: 'queue' }, { topic: 'debug/#', mode: 'drop' }]
  })
  const metrics = metricsPlugin(tier)
  t.teardown(metrics.close)
  const scrape = async (): Promise<Map<string, number>> => parseMetrics(await metrics.metrics())

  const text = await metrics.metrics()
  for (const name of NAMES) t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exposed`)
  t.match(text, /^# TYPE dualbroker_publish_ack_seconds histogram$/m)
  t.match(text, /^# TYPE dualbroker_forwarded_total counter$/m)
  let m = await scrape()
  t.equal(m.get(series('dualbroker_broker_up', { broker: 'broker1' })), 1, 'Broker1 up')
  t.equal(m.get(series('dualbroker_broker_up', { broker: 'broker2' })), 1, 'Broker2 up')
  t.equal(m.get(series('dualbroker_broker_protocol_version', { broker: 'broker1' })), 5, 'mosquitto speaks MQTT 5: auto decided it')
  t.equal(m.get(series('dualbroker_clients')), 0)

  const terminal = await connectClient(t, url, { clientId: 'metered' })
  const published = 7
  for (let i = 0; i < published; i++) await terminal.publishAsync('telemetry/a', `${i}`, { qos: 1 })
  m = await scrape()
  t.equal(m.get(series('dualbroker_forwarded_total', { broker: 'broker1', qos: 1 })), published, 'every QoS 1 publish counted at Broker1')
  t.equal(m.get(series('dualbroker_forwarded_total', { broker: 'broker2', qos: 1 })), 0)
  t.equal(m.get(series('dualbroker_forwarded_total', { broker: 'broker1', qos: 0 })), 0)
  t.equal(m.get(series('dualbroker_publish_ack_seconds_count', { broker: 'broker1' })), published, 'one ack latency per publish')
  t.equal(m.get(series('dualbroker_publish_ack_seconds_bucket', { broker: 'broker1', le: '10' })), published, 'all within the last bucket')
  t.equal(m.get(series('dualbroker_clients')), 1, 'the terminal is counted')

  const failover = nextEvent(tier, 'failover')
  await b1.kill()
  await failover
  const queued = 4
  for (let i = 0; i < queued; i++) await terminal.publishAsync('alarms/door', `${i}`, { qos: 1 })
  await terminal.publishAsync('debug/trace', 'x', { qos: 1 })
  m = await scrape()
  t.equal(m.get(series('dualbroker_broker_up', { broker: 'broker1' })), 0, 'Broker1 down')
  t.equal(m.get(series('dualbroker_failovers_total')), 1)
  t.equal(m.get(series('dualbroker_stored_total')), queued, 'queued publishes stored')
  t.equal(m.get(series('dualbroker_pending_messages')), queued, 'and pending')
  t.ok(m.get(series('dualbroker_pending_bytes'))! >= queued, 'pending bytes count the payloads')
  t.equal(m.get(series('dualbroker_dropped_total', { reason: 'policy' })), 1, 'the debug publish dropped by policy')
  t.equal(m.get(series('dualbroker_expired_total')), 0)

  const failback = nextEvent(tier, 'failback')
  await b1.restart()
  await failback
  m = await scrape()
  t.equal(m.get(series('dualbroker_failbacks_total')), 1)
  t.equal(m.get(series('dualbroker_replayed_total')), queued, 'the backlog replayed')
  t.equal(m.get(series('dualbroker_pending_messages')), 0, 'and drained')
  t.equal(m.get(series('dualbroker_pending_bytes')), 0)
  t.equal(m.get(series('dualbroker_broker_up', { broker: 'broker1' })), 1, 'Broker1 up again')
})

t.test('a shared registry and prefix; close() removes the metrics and the listener', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { tier } = await startDurableTier(t, b1.url, b2.url)
  const registry = new Registry()
  const listeners = tier.listenerCount('publish-acked')
  const metrics = metricsPlugin(tier, { registry, prefix: 'edge_' })
  t.equal(metrics.registry, registry)
  t.equal(tier.listenerCount('publish-acked'), listeners + 1, 'listens for ack latencies')
  const m = parseMetrics(await registry.metrics())
  t.equal(m.get(series('edge_broker_up', { broker: 'broker2' })), 1)
  t.notOk([...m.keys()].some((key) => key.startsWith('dualbroker_')), 'every name takes the prefix')
  t.ok(m.get(series('edge_process_resident_memory_bytes'))! > 0, 'process metrics, with the prefix')
  t.ok(m.has(series('edge_nodejs_eventloop_lag_p99_seconds')), 'event-loop lag')
  t.ok(m.has(series('edge_process_open_fds')), 'file descriptors')
  const collected = new Registry()
  collectDefaultMetrics({ register: collected, prefix: 'edge_' })
  const beside = metricsPlugin(tier, { registry: collected, prefix: 'edge_' })
  t.ok(parseMetrics(await beside.metrics()).has(series('edge_process_open_fds')), 'a registry that already collects them keeps its own (prom-client would throw on a second set)')
  beside.close()
  metrics.close()
  t.equal(tier.listenerCount('publish-acked'), listeners, 'stopped listening')
  t.same(await registry.getMetricsAsJSON(), [], 'metrics removed from the registry')
})

t.test('processMetrics: false leaves the process metrics out', async (t) => {
  // The plugin reads only `state`, `on` and `off`: a still tier is enough here.
  const state = {
    brokers: { broker1: { state: 'up' }, broker2: { state: 'up' } },
    counters: { failovers: 0, failbacks: 0, stored: 0, replayed: 0, forwarded: { broker1: [0, 0, 0], broker2: [0, 0, 0] }, dropped: { policy: 0, overflow: 0, expired: 0, qos0: 0, refused: 0 }, refused: {}, sessions: { restored: { broker1: 0, broker2: 0 }, reconnectsAsked: { broker1: {}, broker2: {} } } },
    pending: { messages: 0, bytes: 0 },
    sessionsLost: { broker1: 0, broker2: 0 },
    clients: 0
  }
  const tier = { state, on () {}, off () {} }
  const text = await metricsPlugin(tier as never, { processMetrics: false }).metrics()
  t.notMatch(text, /process_|nodejs_/)
  t.match(await metricsPlugin(tier as never).metrics(), /^# TYPE dualbroker_process_cpu_seconds_total counter$/m, 'on by default')
})
