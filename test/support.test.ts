import { once } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import t from 'tap'
import { startAedes } from './support/aedes-broker.js'
import { connackCode, connectClient, type ConnectError } from './support/client.js'
import { startMosquitto } from './support/mosquitto.js'
import { freePort } from './support/ports.js'
import { record, topicMatches } from './support/recorder.js'
import { duplicates, missing, orderViolations, parseSeq } from './support/sequence.js'

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('sequence helpers', async t => {
  t.same(missing({ from: 1, to: 6 }, [1, 3, 3, 6]), [2, 4, 5])
  t.same(missing([5, 1, 9], [9]), [1, 5])
  t.equal(orderViolations([1, 2, 3]), 0)
  t.equal(orderViolations([1, 3, 2, 4]), 1)
  t.equal(orderViolations([1, 2, 3, 2, 3]), 0, 're-sent numbers are duplicates, not reordering')
  t.equal(orderViolations([5, 1, 2, 3]), 3)
  t.equal(duplicates([1, 2, 2, 3, 1, 1]), 3)
  t.equal(parseSeq('42'), 42)
  t.equal(parseSeq(Buffer.from('{"seq":7,"x":1}')), 7)
  t.equal(parseSeq('{"seq":"7"}'), undefined)
  t.equal(parseSeq('hello'), undefined)
  t.ok(topicMatches('a/+/c', 'a/b/c'))
  t.ok(topicMatches('a/#', 'a'))
  t.notOk(topicMatches('a/+', 'a/b/c'))
})

t.test('freePort gives a bindable loopback port', async t => {
  const port = await freePort()
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  t.ok(port > 0)
})

t.test('mosquitto: publish reaches the recorder', async t => {
  const broker = await startMosquitto(t)
  t.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`)
  const rec = await record(t, broker.url, 'seq/#')
  const pub = await connectClient(t, broker.url)
  await pub.publishAsync('seq/a', 'hello', { qos: 1, retain: true })
  const first = await rec.waitForTopic('seq/+')
  t.equal(first.payload.toString(), 'hello')
  t.equal(first.qos, 1)
  for (let i = 1; i <= 1000; i++) await pub.publishAsync('seq/n', i % 2 ? String(i) : JSON.stringify({ seq: i }), { qos: 1 })
  await rec.waitFor(1001)
  const seqs = rec.sequences('seq/n')
  t.same(missing({ from: 1, to: 1000 }, seqs), [])
  t.equal(orderViolations(seqs), 0)
  t.equal(duplicates(seqs), 0)
  await t.rejects(rec.waitFor(1002, 100), /only 1001 message\(s\) arrived/)
  const late = await record(t, broker.url, 'seq/a')
  t.equal((await late.waitForTopic('seq/a')).retain, true, 'retained flag is recorded')
})

t.test('mosquitto: password file and CONNACK codes', async t => {
  const broker = await startMosquitto(t, { users: { alice: 'secret', bob: 'b0b' } })
  t.equal(await connackCode(broker.url, { username: 'alice', password: 'secret' }), 0)
  t.equal(await connackCode(broker.url, { username: 'bob', password: 'b0b' }), 0)
  t.equal(await connackCode(broker.url, { username: 'alice', password: 'wrong' }), 5, '3.1.1: not authorised')
  t.equal(await connackCode(broker.url, { username: 'nobody', password: 'x' }), 5)
  t.equal(await connackCode(broker.url), 5, 'anonymous refused by default once users exist')
  t.equal(await connackCode(broker.url, { protocolVersion: 5, username: 'alice', password: 'wrong' }), 135)
  const err: ConnectError = await connectClient(t, broker.url, { username: 'alice', password: 'wrong' }).then(
    () => new Error('connected'),
    (e: ConnectError) => e,
  )
  t.equal(err.code, 5, 'connectClient keeps the CONNACK code')
  const open = await startMosquitto(t, { users: { alice: 'secret' }, allowAnonymous: true })
  t.equal(await connackCode(open.url), 0)
})

t.test('mosquitto: acl file', async t => {
  const broker = await startMosquitto(t, {
    users: { alice: 'secret' },
    acl: 'user alice\ntopic readwrite a/#\n',
  })
  const creds = { username: 'alice', password: 'secret' }
  const rec = await record(t, broker.url, '#', creds)
  const pub = await connectClient(t, broker.url, creds)
  // 3.1.1 has no way to refuse a publish: mosquitto acks it and drops it.
  await pub.publishAsync('z/denied', 'x', { qos: 1 })
  await pub.publishAsync('a/ok', 'x', { qos: 1 })
  await rec.waitForTopic('a/ok')
  t.same(rec.messages.map(m => m.topic), ['a/ok'])
})

t.test('mosquitto: SIGKILL, then restart on the same port', async t => {
  const broker = await startMosquitto(t)
  const { port, pid } = broker
  t.ok(pid !== undefined && isAlive(pid))
  await broker.kill()
  t.notOk(broker.running())
  await t.rejects(connackCode(broker.url), { code: 'ECONNREFUSED' })
  await broker.restart()
  t.equal(broker.port, port)
  t.not(broker.pid, pid)
  t.equal(await connackCode(broker.url), 0)
})

t.test('mosquitto: persistence keeps retained messages across close + restart', async t => {
  const broker = await startMosquitto(t, { persistence: true })
  const pub = await connectClient(t, broker.url)
  await pub.publishAsync('keep', 'me', { qos: 1, retain: true })
  await broker.close()
  await broker.restart()
  const rec = await record(t, broker.url, 'keep')
  t.equal((await rec.waitForTopic('keep')).payload.toString(), 'me')
})

t.test('mosquitto: SIGSTOP makes connects time out, SIGCONT recovers', async t => {
  const broker = await startMosquitto(t)
  broker.stop()
  await t.rejects(connackCode(broker.url, { connectTimeout: 500 }), /connack timeout/)
  broker.cont()
  t.equal(await connackCode(broker.url), 0)
  broker.stop()
  await broker.close()
  t.notOk(broker.running(), 'close() works on a stopped broker')
  await broker.close()
})

t.test('mosquitto: teardown kills the process and removes the temp dir', async t => {
  let dir = ''
  let pid: number | undefined
  await t.test('child', async t => {
    const broker = await startMosquitto(t)
    ;({ dir, pid } = broker)
    t.ok(fs.existsSync(broker.confPath))
  })
  t.notOk(fs.existsSync(dir))
  t.ok(pid !== undefined && !isAlive(pid))
})

t.test('mosquitto: an unusable config rejects with its log', async t => {
  // resume() so a probe's FIN is noticed and close() does not wait on it.
  const holder = net.createServer(socket => socket.resume())
  const port = await freePort()
  await new Promise<void>(resolve => holder.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => holder.close(() => resolve())))
  // The port answers TCP but never CONNACK, and mosquitto cannot bind it.
  await t.rejects(startMosquitto(t, { port }), /Address already in use/)
})

t.test('aedes: counts connections and restarts on the same port', async t => {
  const broker = await startAedes(t, {
    aedes: {
      authenticate: (_client, username, _password, done) => done(null, username !== 'mallory'),
    },
  })
  t.equal(broker.connections(), 0)
  const a = await connectClient(t, broker.url, { clientId: 'a' })
  await connectClient(t, broker.url, { clientId: 'b' })
  t.equal(broker.connections(), 2)
  t.same(broker.clientIds().sort(), ['a', 'b'])
  t.equal(await connackCode(broker.url, { username: 'mallory', password: 'x' }), 5)
  const gone = once(broker.aedes, 'clientDisconnect')
  await a.endAsync()
  await gone
  t.equal(broker.connections(), 1)
  t.equal(broker.connectsTotal(), 2)

  const { port, aedes } = broker
  await broker.restart()
  t.equal(broker.port, port)
  t.not(broker.aedes, aedes)
  t.equal(broker.connections(), 0, 'old connections were destroyed')
  const rec = await record(t, broker.url, 't')
  const pub = await connectClient(t, broker.url)
  await pub.publishAsync('t', '1', { qos: 1 })
  await rec.waitFor(1)
  t.equal(broker.connections(), 2)
  t.equal(broker.connectsTotal(), 4)
})
