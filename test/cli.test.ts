import t from 'tap'
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { startAedes } from './support/aedes-broker.js'
import { finish, runCli as run, spawnCli as start } from './support/cli-process.js'
import { connectClient } from './support/client.js'


const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '')

t.test('--version prints the package version', async (t) => {
  const { code, stdout } = await run(['--version'])
  t.equal(code, 0)
  t.equal(stdout.trim(), JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version)
})

t.test('a bad config file exits 2 with one stderr line per problem, naming the key', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'stor: {}\nlisten:\n  port: 70000\nstore:\n  maxBytes: lots\n' })
  const { code, stdout, stderr } = await run(['--config', join(dir, 'bad.yaml'), '--http-port', '12ab'])
  t.equal(code, 2)
  t.equal(stdout, '')
  t.same(lines(stderr), [
    'aedes-dual-broker: --http-port: "12ab" is not a whole number',
    'aedes-dual-broker: store.maxBytes: "lots" is not a size like "512MiB"',
    'aedes-dual-broker: listen.port: 70000 is not valid: expected an integer from 0 to 65535',
    'aedes-dual-broker: stor: unknown key (did you mean "store"?)'
  ])
})

t.test('an unparsable or missing config file exits 2', async (t) => {
  const dir = t.testdir({ 'broken.json': '{ "data": ' })
  const broken = await run(['--config', join(dir, 'broken.json')])
  t.equal(broken.code, 2)
  t.match(broken.stderr, /^aedes-dual-broker: config file .*broken\.json.*invalid JSON/)
  const missing = await run(['--config', join(dir, 'nope.yaml')])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /^aedes-dual-broker: config file .*nope\.yaml: cannot read it/)
})

t.test('an unknown flag exits 2', async (t) => {
  const { code, stderr } = await run(['--prot', '1883'])
  t.equal(code, 2)
  t.match(stderr, /^aedes-dual-broker: unknown option '--prot'/)
})

t.test('--print-config prints the effective config with secrets masked', async (t) => {
  const dir = t.testdir({
    'c.yaml': 'broker1:\n  url: mqtt://10.0.0.1:1883\n  username: tier\n  password: hunter2\nbroker2:\n  url: mqtt://10.0.0.2:1883\nlisten:\n  port: 2000\n'
  })
  const { code, stdout, stderr } = await run(['--config', join(dir, 'c.yaml'), '--port', '2001', '--policy', 'a/#=drop', '--print-config'])
  t.equal(code, 0, stderr)
  t.notMatch(stdout, 'hunter2')
  const config = JSON.parse(stdout)
  t.match(config, {
    broker1: { url: 'mqtt://10.0.0.1:1883', username: 'tier', password: '***' },
    listen: { port: 2001, host: '0.0.0.0' },
    policies: [{ topic: 'a/#', mode: 'drop' }],
    logLevel: 'info'
  })
})

t.test('--print-config keeps durations and sizes as written and names the embedded brokers a start would use', async (t) => {
  const dir = t.testdir({ 'c.yaml': 'policies:\n  - { topic: "alarms/#", mode: queue, ttl: 1h }\nstore:\n  maxBytes: 512MiB\n' })
  const { code, stdout, stderr } = await run(['--config', join(dir, 'c.yaml'), '--port', '24883', '--max-packet-size', '256KiB', '--print-config'])
  t.equal(code, 0, stderr)
  const config = JSON.parse(stdout)
  t.same(config.policies, [{ topic: 'alarms/#', mode: 'queue', ttl: '1h' }])
  t.equal(config.store.maxBytes, '512MiB')
  t.equal(config.limits.maxPacketSize, '256KiB')
  t.equal(config.health.ackTimeoutMs, 5000, 'defaults are numbers')
  t.same(config.embeddedPorts, [24884, 24885], 'derived from --port')
  t.equal(config.listen.host, '127.0.0.1', 'demo mode listens on loopback')
  t.equal(config.broker1, undefined)

  const moved = JSON.parse((await run(['--embedded-ports', '2001,2002', '--host', '0.0.0.0', '--print-config'])).stdout)
  t.same(moved.embeddedPorts, [2001, 2002])
  t.equal(moved.listen.host, '0.0.0.0', '--host opens the demo to the network')
  const real = JSON.parse((await run(['--broker1', 'mqtt://10.0.0.1', '--broker2', 'mqtt://10.0.0.2', '--print-config'])).stdout)
  t.equal(real.embeddedPorts, undefined, 'no embedded brokers with real ones')
  t.equal(real.listen.host, '0.0.0.0')
})

/** Resolves with the first JSON log line whose msg is `msg`. */
function logLine (child: ChildProcess, msg: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString()
      for (const line of buffered.split('\n').slice(0, -1)) {
        const entry = JSON.parse(line) as Record<string, unknown>
        if (entry.msg === msg) {
          child.stdout!.off('data', onData)
          resolve(entry)
        }
      }
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1)
    }
    child.stdout!.on('data', onData)
    child.once('close', (code) => reject(new Error(`exited ${code} before logging "${msg}"`)))
  })
}

t.test('the server starts, logs "listening" and stops on SIGTERM', async (t) => {
  const [broker1, broker2] = [await startAedes(t), await startAedes(t)]
  const dir = t.testdir({ 'c.yaml': `broker1:\n  url: ${broker1.url}\n  password: hunter2\nbroker2:\n  url: mqtt://10.9.9.9:1\n` })
  const child = start(['--config', join(dir, 'c.yaml'), '--broker2', broker2.url, '--host', '127.0.0.1', '--port', '0', '--data', join(dir, 'data')])
  const outcome = finish(child)
  t.teardown(() => { child.kill('SIGKILL') })
  const listening = await logLine(child, 'listening')
  t.match(listening, { level: 30, name: 'aedes-dual-broker', mqtt: { host: String, port: Number }, broker1: String, broker2: String, embeddedBrokers: false })
  t.equal(listening.broker2, broker2.url, '--broker2 overrides the file')
  const { port } = listening.mqtt as { port: number }
  t.not(port, 0, 'the bound port, not the one asked for')
  const client = await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'cli-test' })
  await client.endAsync()

  child.kill('SIGTERM')
  const { code, stdout } = await outcome
  t.equal(code, 0)
  t.match(stdout, /"msg":"stopping"/)
  t.notMatch(stdout, 'hunter2')
})

t.test('a start failure exits 1 with a fatal log line and one stderr line', async (t) => {
  const [broker1, broker2] = [await startAedes(t), await startAedes(t)]
  const taken = net.createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const { port } = taken.address() as net.AddressInfo
  const dir = t.testdir()
  const { code, stdout, stderr } = await run(['--broker1', broker1.url, '--broker2', broker2.url, '--host', '127.0.0.1',
    '--port', String(port), '--data', join(dir, 'data')])
  t.equal(code, 1)
  t.match(lines(stderr), [/^aedes-dual-broker: cannot start: /])
  t.equal(lines(stderr).length, 1)
  t.match(stdout, /"level":60.*"msg":"cannot start: /)
})

t.test('with no broker named it runs two embedded brokers on loopback: a terminal subscribes and receives what another publishes', async (t) => {
  const dir = t.testdir({})
  // No --host: in demo mode the terminals' listener, too, takes loopback only. --port 0: the embedded brokers take free ports.
  const child = start(['--port', '0', '--data', join(dir, 'data')])
  const outcome = finish(child)
  t.teardown(() => { child.kill('SIGKILL') })
  const listening = await logLine(child, 'listening')
  t.match(listening, { embeddedBrokers: true, broker1: /^mqtt:\/\/127\.0\.0\.1:\d+$/, broker2: /^mqtt:\/\/127\.0\.0\.1:\d+$/, mqtt: { host: '127.0.0.1' } })
  const ports = [listening.broker1, listening.broker2].map((url) => Number(new URL(String(url)).port))
  t.ok(ports.every((port) => port > 0), 'the ports actually bound are logged')
  t.not(ports[0], ports[1])
  const url = `mqtt://127.0.0.1:${(listening.mqtt as { port: number }).port}`
  const subscriber = await connectClient(t, url, { clientId: 'demo-sub' })
  await subscriber.subscribeAsync('demo/#', { qos: 1 })
  const received = new Promise<string>((resolve) => subscriber.once('message', (_topic, payload) => resolve(payload.toString())))
  const publisher = await connectClient(t, url, { clientId: 'demo-pub' })
  await publisher.publishAsync('demo/hello', 'world', { qos: 1 })
  t.equal(await received, 'world')
  child.kill('SIGTERM')
  t.equal((await outcome).code, 0)
})

t.test('--embedded-ports starts the embedded brokers on the ports given (0: free ones)', async (t) => {
  const child = start(['--port', '0', '--embedded-ports', '0,0', '--data', join(t.testdir({}), 'data')])
  const outcome = finish(child)
  t.teardown(() => { child.kill('SIGKILL') })
  t.match(await logLine(child, 'listening'), { embeddedBrokers: true, broker1: /^mqtt:\/\/127\.0\.0\.1:\d+$/ })
  child.kill('SIGTERM')
  t.equal((await outcome).code, 0, (await outcome).stderr)
})
