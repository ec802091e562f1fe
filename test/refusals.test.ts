import t from 'tap'
import net from 'node:net'
import { createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { connackCode, connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { recordLogs } from './support/log-recorder.js'

const NOT_AUTHORIZED = 5

t.test('a refused terminal is logged at info with its reason: protocol version, credentials, limits', async (t) => {
  // Broker1 refuses one device, as a broker's own password file would.
  const refuse = { authenticate: (_c: unknown, username: string | undefined, _p: unknown, done: (e: Error & { returnCode: number } | null, ok: boolean) => void) =>
    username === 'intruder' ? done(Object.assign(new Error('no'), { returnCode: NOT_AUTHORIZED }), false) : done(null, true) }
  const [b1, b2] = [await startAedes(t, { aedes: refuse }), await startAedes(t)]
  const logs = recordLogs()
  const server = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: b1.url }, broker2: { url: b2.url }, data: tempDir(t), limits: { maxConnections: 2 } }, { logger: logs })
  t.teardown(() => server.close())
  const url = `mqtt://127.0.0.1:${server.addresses.mqtt.port}`

  const version = logs.next('terminal refused', (f) => f.returnCode === 1)
  t.equal(await connackCode(url, { protocolVersion: 5, clientId: 'speaks-5' }), 1, 'MQTT 5 is refused by Aedes 1.2')
  t.match(await version, { level: 'info', fields: { reason: 'unacceptable protocol version', remote: /127\.0\.0\.1/ } })

  const credentials = logs.next('terminal refused', (f) => f.clientId === 'intruder-1')
  t.equal(await connackCode(url, { clientId: 'intruder-1', username: 'intruder', password: 'guess' }), NOT_AUTHORIZED, 'the broker\'s refusal passes through')
  t.match(await credentials, { level: 'info', fields: { returnCode: NOT_AUTHORIZED, reason: 'not authorized' } })

  await connectClient(t, url, { clientId: 'one' })
  await connectClient(t, url, { clientId: 'two' })
  const full = logs.next('connection refused', (f) => f.reason === 'max-connections')
  const third = net.connect(server.addresses.mqtt.port, '127.0.0.1')
  third.on('error', () => {})
  t.match(await full, { level: 'info', fields: { remote: /127\.0\.0\.1/ } })
  third.destroy()
  t.notOk(logs.lines.some((line) => (line.msg === 'terminal refused' || line.msg === 'connection refused') && line.level !== 'info'), 'never louder than info')
})
