import t from 'tap'
import type { MqttClient } from 'mqtt'
import { statusServer, type StatusSnapshot } from '../plugins/status/index.js'
import { statusPage } from '../plugins/status/page.js'
import { sysTopicsPlugin } from '../plugins/sys-topics.js'
import { newCounters as tierCounters } from '../src/state.js'
import { startCli } from './support/cli-process.js'
import { connectClient } from './support/client.js'
import { nextEvent, startDurableTier, tempDir } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { parseMetrics, series } from './support/prometheus.js'
import { followEvents } from './support/sse.js'

interface Health {
  status: string
  mode: string
  brokers: Record<string, { state: string, url: string }>
  pending: { messages: number, bytes: number }
  node: { clientId: string, online: Record<string, boolean> }
}

async function health (base: string): Promise<{ code: number, body: Health }> {
  const res = await fetch(`${base}/health`)
  return { code: res.status, body: await res.json() as Health }
}

interface Retained { payload: string, retain: boolean }

/** Every message a client receives, by topic: the latest one wins. */
function latest (client: MqttClient): Map<string, Retained> {
  const seen = new Map<string, Retained>()
  client.on('message', (topic, payload, packet) => seen.set(topic, { payload: payload.toString(), retain: packet.retain }))
  return seen
}

/** Resolves once the client's latest message on `topic` satisfies `ok`. */
function until (client: MqttClient, seen: Map<string, Retained>, topic: string, ok: (m: Retained) => boolean): Promise<Retained> {
  const now = seen.get(topic)
  if (now !== undefined && ok(now)) return Promise.resolve(now)
  return new Promise((resolve) => {
    const check = (): void => {
      const m = seen.get(topic)
      if (m === undefined || !ok(m)) return
      client.off('message', check)
      resolve(m)
    }
    client.on('message', check)
  })
}

t.test('/health: 200 while a broker is up, 503 with both down, 200 again', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { tier } = await startDurableTier(t, b1.url, b2.url)
  const status = await statusServer(tier, { port: 0 })
  t.teardown(status.close)
  t.equal(status.address.host, '127.0.0.1', 'loopback by default')

  let h = await health(status.url)
  t.equal(h.code, 200)
  t.match(h.body, { status: 'ok', mode: 'normal', brokers: { broker1: { state: 'up', url: b1.url }, broker2: { state: 'up' } }, pending: { messages: 0, bytes: 0 } })
  t.same(h.body.node, { clientId: tier.state.node.clientId, online: { broker1: true, broker2: true } }, 'the node\'s own session, by its client id')

  const failover = nextEvent(tier, 'failover')
  await b1.kill()
  await failover
  h = await health(status.url)
  t.equal(h.code, 200, 'still 200 with Broker2 alone')
  t.match(h.body, { status: 'ok', mode: 'failover', brokers: { broker1: { state: 'down' }, broker2: { state: 'up' } } })

  const bothDown = nextEvent(tier, 'broker-down', ({ broker }) => broker === 'broker2')
  await b2.kill()
  await bothDown
  h = await health(status.url)
  t.equal(h.code, 503, '503 with both brokers down')
  t.match(h.body, { status: 'unavailable', brokers: { broker1: { state: 'down' }, broker2: { state: 'down' } } })
  t.equal((await fetch(`${status.url}/health`, { method: 'HEAD' })).status, 503, 'HEAD answers the same')

  const back = nextEvent(tier, 'broker-up', ({ broker }) => broker === 'broker2')
  await b2.restart()
  await back
  h = await health(status.url)
  t.equal(h.code, 200, '200 again once a broker is back')
  t.equal(h.body.brokers.broker2!.state, 'up')
})

t.test('/metrics, /events, the page, and what is not there', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startDurableTier(t, b1.url, b2.url)
  const status = await statusServer(tier, { port: 0 })
  t.teardown(status.close)
  const terminal = await connectClient(t, url, { clientId: 'counted' })
  for (let i = 0; i < 3; i++) await terminal.publishAsync('telemetry/x', `${i}`, { qos: 1 })

  const res = await fetch(`${status.url}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain/)
  const m = parseMetrics(await res.text())
  t.equal(m.get(series('dualbroker_forwarded_total', { broker: 'broker1', qos: 1 })), 3)
  t.equal(m.get(series('dualbroker_clients')), 1)

  const page = await fetch(`${status.url}/`)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), /new EventSource\('events'\)/, 'the page follows /events')

  const events = await followEvents<StatusSnapshot>(t, `${status.url}/events`)
  const first = await events.next(() => true)
  t.ok(Array.isArray(first.history) && first.history.length > 0, 'the first snapshot carries the pending history')
  t.match(first, { mode: 'normal', health: 'ok', clients: 1, brokers: { broker1: { state: 'up' } } })
  const next = await events.next((s) => s.history === undefined && s.at > first.at)
  t.ok(next.at > first.at, 'a snapshot follows every second')
  await b1.kill()
  const failover = await events.next((s) => s.mode === 'failover')
  t.match(failover.events[0], { type: 'failover' }, 'the last event is the failover')
  t.ok(failover.events.some((e) => e.type === 'broker-down' && e.detail.startsWith('broker1')), 'after Broker1 went down')

  t.equal((await fetch(`${status.url}/nope`)).status, 404)
  t.equal((await fetch(`${status.url}/health`, { method: 'POST' })).status, 405)
})

t.test('the page arrives with the current state rendered in it, drops by reason included', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startDurableTier(t, b1.url, b2.url, { policies: [{ topic: 'debug/#', mode: 'drop' }] })
  const status = await statusServer(tier, { port: 0 })
  t.teardown(status.close)
  const terminal = await connectClient(t, url, { clientId: 'drops' })
  const failover = nextEvent(tier, 'failover')
  await b1.kill()
  await failover
  for (let i = 0; i < 2; i++) await terminal.publishAsync('debug/trace', `${i}`, { qos: 1 })

  const html = await (await fetch(`${status.url}/`)).text()
  t.match(html, /<body data-mode="failover">/, 'the mode, before any script ran')
  t.match(html, /<span id="mode" class="badge">failover<\/span>/)
  t.match(html, /data-broker="broker1" data-state="down"><h2>[^<]*<\/h2><div class="state">down<\/div><div class="url">mqtt:\/\/127\.0\.0\.1:\d+<\/div>/)
  t.match(html, /data-broker="broker2" data-state="up">/)
  t.match(html, /<div class="state" id="clients">1<\/div>/)
  t.match(html, /<div class="state" id="dropped">2<\/div>/)
  t.match(html, /<li data-reason="policy">policy <b>2<\/b><\/li>/, 'drops by reason')
  t.match(html, /<li data-reason="qos0">qos0 <b>0<\/b><\/li>/)
  t.match(html, /<tr data-type="failover"><td>\d\d:\d\d:\d\d<\/td><td>failover: /, 'the last events')
  t.notMatch(html, /\{\{\w+\}\}/, 'every placeholder filled')
  const initial = JSON.parse(/<script type="application\/json" id="initial">(.*?)<\/script>/s.exec(html)![1]!) as StatusSnapshot
  t.match(initial, { mode: 'failover', counters: { dropped: { policy: 2 } } }, 'the snapshot the script starts from')
  t.ok(Array.isArray(initial.history), 'with the chart\'s history')
})

t.test('the rendered page takes everything from the state as text, never as markup', async (t) => {
  const hostile = '</script><img src=x onerror=alert(1)>'
  const snapshot: StatusSnapshot = {
    at: 0,
    health: 'ok',
    mode: 'failover',
    brokers: { broker1: { state: 'down', url: `mqtt://a/${hostile}`, protocolVersion: null }, broker2: { state: 'up', url: 'mqtt://b', protocolVersion: 5 } },
    clients: 0,
    pending: { messages: 0, bytes: 0 },
    store: { enabled: true, writable: true },
    sessionsLost: { broker1: 0, broker2: 0 },
    counters: tierCounters(),
    node: { clientId: 'dual-broker-node-1', online: { broker1: false, broker2: true } },
    replay: null,
    events: [{ at: 0, type: 'broker-down', detail: hostile }],
    history: []
  }
  const html = statusPage(snapshot)
  t.notMatch(html, '<img', 'no element from the state')
  t.equal(html.split('</script>').length - 1, 2, 'only the page\'s own two scripts end')
  t.match(html, '&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;')
  const initial = /<script type="application\/json" id="initial">(.*?)<\/script>/s.exec(html)![1]!
  t.equal(JSON.parse(initial).events[0].detail, hostile, 'the embedded JSON still reads back as it was')
})

t.test('retained $SYS/dual-broker/ topics, read by a terminal through the tier', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier, aedes } = await startDurableTier(t, b1.url, b2.url)
  const sys = sysTopicsPlugin(tier, aedes)
  t.teardown(sys.close)
  await sys.refresh()

  // Subscribing after the publish: what arrives is the retained copy.
  const terminal = await connectClient(t, url, { clientId: 'watcher' })
  const seen = latest(terminal)
  await terminal.subscribeAsync('$SYS/dual-broker/#', { qos: 0 })
  const state = await until(terminal, seen, '$SYS/dual-broker/state', () => true)
  t.equal(state.retain, true, 'state is retained')
  t.match(JSON.parse(state.payload), { mode: 'normal', brokers: { broker1: { state: 'up', url: b1.url }, broker2: { state: 'up' } }, pending: { messages: 0 } })
  t.match(await until(terminal, seen, '$SYS/dual-broker/broker1', () => true), { payload: 'up', retain: true })
  t.match(await until(terminal, seen, '$SYS/dual-broker/mode', () => true), { payload: 'normal', retain: true })

  await b1.kill()
  t.match(await until(terminal, seen, '$SYS/dual-broker/broker1', (m) => m.payload === 'down'), { payload: 'down' }, 'Broker1 down, live')
  const failover = await until(terminal, seen, '$SYS/dual-broker/state', (m) => (JSON.parse(m.payload) as Health).mode === 'failover')
  t.match(JSON.parse(failover.payload), { brokers: { broker1: { state: 'down' }, broker2: { state: 'up' } } })

  // A late subscriber gets the new state retained.
  const late = await connectClient(t, url, { clientId: 'late' })
  const lateSeen = latest(late)
  await late.subscribeAsync('$SYS/dual-broker/broker1', { qos: 0 })
  t.match(await until(late, lateSeen, '$SYS/dual-broker/broker1', () => true), { payload: 'down', retain: true })
})

t.test('the server: --http-port starts the status server, $SYS topics always', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const cli = await startCli(t, ['--broker1', b1.url, '--broker2', b2.url, '--host', '127.0.0.1', '--port', '0', '--http-port', '0', '--data', tempDir(t), '--log-level', 'info'])
  const listening = cli.logs.find((entry) => entry.msg === 'listening')!
  const http = listening.http as { host: string, port: number }
  t.match(http, { host: '127.0.0.1', port: Number }, 'the listening line gives the HTTP address')
  const h = await health(`http://127.0.0.1:${http.port}`)
  t.equal(h.code, 200)
  t.match(h.body.brokers, { broker1: { state: 'up' }, broker2: { state: 'up' } })

  const terminal = await connectClient(t, cli.url, { clientId: 'ops' })
  const seen = latest(terminal)
  await terminal.subscribeAsync('$SYS/dual-broker/state', { qos: 0 })
  const state = await until(terminal, seen, '$SYS/dual-broker/state', () => true)
  t.match(JSON.parse(state.payload), { mode: 'normal' })
  await cli.kill('SIGTERM')
  t.equal(await cli.exited, 0, 'SIGTERM still stops it cleanly, status server included')
})
