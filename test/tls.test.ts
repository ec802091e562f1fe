import t from 'tap'
import { readFileSync } from 'node:fs'
import tls from 'node:tls'
import { Aedes } from 'aedes'
import { createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { makeCertificates } from './support/certs.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'

t.test('terminals over TLS, with and without client certificates', async (t) => {
  const certs = makeCertificates(t)
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const server = await createAccessTier({
    listen: { host: '127.0.0.1', port: 0, tls: { port: 0, key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true } },
    broker1: { url: b1.url },
    broker2: { url: b2.url },
    data: tempDir(t)
  })
  t.teardown(() => server.close())
  const url = `mqtts://127.0.0.1:${server.addresses.mqtts!.port}`
  const ca = readFileSync(certs.ca)
  await t.resolves(connectClient(t, url, { ca, key: readFileSync(certs.clientKey), cert: readFileSync(certs.clientCert), clientId: 'with-cert' }),
    'a terminal with a certificate from the configured CA gets in')
  await t.rejects(connectClient(t, url, { ca, clientId: 'no-cert' }), 'a terminal without a client certificate is refused')
  await t.rejects(connectClient(t, url, { ca: readFileSync(certs.otherCa), key: readFileSync(certs.clientKey), cert: readFileSync(certs.clientCert) }),
    /certificate/, 'the terminal verifies the tier\'s certificate')
})

t.test('mqtts:// upstreams are verified against the configured CA by default', async (t) => {
  const certs = makeCertificates(t)
  const aedes = await Aedes.createBroker()
  const upstream = tls.createServer({ key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) }, aedes.handle)
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close(); aedes.close() })
  const secureUrl = `mqtts://127.0.0.1:${(upstream.address() as { port: number }).port}`
  const b2 = await startAedes(t)

  const trusting = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: secureUrl, ca: certs.ca }, broker2: { url: b2.url }, data: tempDir(t) })
  t.teardown(() => trusting.close())
  t.equal(trusting.tier.state.brokers.broker1.state, 'up', 'a broker whose certificate the CA signed is up')

  const lines: Array<{ msg?: string, reason?: string }> = []
  const capture = (obj: object, msg?: string): void => { lines.push({ ...obj, ...(msg !== undefined && { msg }) }) }
  const logger = { info: capture, warn: capture, error: capture, debug: capture }
  const wrong = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: secureUrl, ca: certs.otherCa }, broker2: { url: b2.url }, data: tempDir(t) }, { logger })
  t.teardown(() => wrong.close())
  t.equal(wrong.tier.state.brokers.broker1.state, 'down', 'a broker whose certificate does not verify is refused')
  const down = lines.find((line) => line.msg === 'broker down')
  t.match(down?.reason, /certificate/, `the log says why: ${down?.reason}`)
})
