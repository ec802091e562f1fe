import t from 'tap'
import { createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'

t.test('a graceful stop lets publishes in flight become safe before the terminals are dropped', async (t) => {
  const held: Array<() => void> = []
  let arrived: () => void = () => {}
  const firstArrived = new Promise<void>((resolve) => { arrived = resolve })
  const b1 = await startAedes(t, {
    aedes: {
      authorizePublish: (client, _packet, callback) => {
        if (client === null) return callback(null)
        held.push(() => callback(null)) // Broker1 acks late
        arrived()
      }
    }
  })
  const b2 = await startAedes(t)
  const server = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: b1.url }, broker2: { url: b2.url }, data: tempDir(t) })
  const url = `mqtt://127.0.0.1:${server.addresses.mqtt.port}`
  const terminal = await connectClient(t, url, { clientId: 'late-ack' })
  const acked = terminal.publishAsync('x', 'in flight', { qos: 1 })
  await firstArrived

  const stopped = server.close()
  await t.rejects(connectClient(t, url, { clientId: 'newcomer' }), 'no new terminal once stopping')
  for (const release of held.splice(0)) release()
  await t.resolves(acked, 'the publish in flight was acknowledged before the tier stopped')
  await stopped
  t.equal(b1.connections(), 0, 'every upstream session ended')
})

t.test('a graceful stop with http.drainDelayMs: /health says stopping (503) while the node still serves, then the listeners close', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const drainDelayMs = 600
  const server = await createAccessTier({
    listen: { host: '127.0.0.1', port: 0 }, broker1: { url: b1.url }, broker2: { url: b2.url }, data: tempDir(t),
    http: { host: '127.0.0.1', port: 0, drainDelayMs }
  })
  const url = `mqtt://127.0.0.1:${server.addresses.mqtt.port}`
  const health = async (): Promise<{ code: number, status: string }> => {
    const res = await fetch(`http://127.0.0.1:${server.addresses.http!.port}/health`)
    return { code: res.status, status: ((await res.json()) as { status: string }).status }
  }
  t.same(await health(), { code: 200, status: 'ok' }, 'healthy before the stop')
  const terminal = await connectClient(t, url, { clientId: 'stays-a-while' })
  let terminalClosedAt = 0
  terminal.on('close', () => { terminalClosedAt ||= Date.now() })

  const stopAt = Date.now()
  const stopped = server.close()
  t.same(await health(), { code: 503, status: 'stopping' }, '/health answers 503 at once')
  await t.resolves(terminal.publishAsync('x', 'still served', { qos: 1 }), 'a connected terminal is still served during the delay')
  const late = await connectClient(t, url, { clientId: 'late-comer' })
  t.ok(late.connected, 'a terminal the balancer has not yet diverted still gets in')
  await stopped
  t.ok(terminalClosedAt - stopAt >= drainDelayMs, `terminals were let go only after the delay (${terminalClosedAt - stopAt} ms)`)
})
