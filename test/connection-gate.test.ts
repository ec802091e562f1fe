import t, { type Test } from 'tap'
import net from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { AccessTierConfig } from '../src/index.js'
import { createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { startCli, tierConfigFile } from './support/cli-process.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { connackFrom, idlePool, loopbackSources } from './support/idle.js'
import { parseMetrics, series } from './support/prometheus.js'

async function startServer (t: Test, limits: AccessTierConfig['limits']): Promise<{ port: number, url: string, refused: () => Record<string, number> }> {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const server = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: b1.url }, broker2: { url: b2.url }, data: tempDir(t), limits })
  t.teardown(() => server.close())
  const port = server.addresses.mqtt.port
  return { port, url: `mqtt://127.0.0.1:${port}`, refused: () => server.tier.state.counters.refused }
}

const CONNECT = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'late', keepalive: 0 })

t.test('limits.connectTimeoutMs: a connection without CONNECT is closed after it; one whose CONNECT came stays', async (t) => {
  const { port, refused } = await startServer(t, { connectTimeoutMs: 300 })
  const pool = idlePool(t)
  const started = performance.now()
  const idle = await pool.open(port)
  const speaking = await pool.open(port)
  // Sent in two pieces: a CONNECT counts once it has arrived whole.
  speaking.socket.write(CONNECT.subarray(0, 5))
  await new Promise((resolve) => setTimeout(resolve, 150))
  speaking.socket.write(CONNECT.subarray(5))
  await idle.closed
  const waited = performance.now() - started
  t.ok(waited >= 290 && waited < 800, `closed after ${Math.round(waited)} ms`)
  t.equal(speaking.socket.destroyed, false, 'the connection that sent CONNECT is open')
  t.equal(refused()['connect-timeout'], 1)
})

t.test('limits.maxPendingConnectsPerSource and maxConnectionsPerSource: one address cannot take more', async (t) => {
  const { port, refused } = await startServer(t, { maxPendingConnectsPerSource: 3, maxConnectionsPerSource: 5, connectionRatePerSecond: 0 })
  const pool = idlePool(t)
  const [a, b, c] = loopbackSources(3)
  const fromA = await Promise.all(Array.from({ length: 5 }, () => pool.open(port, a)))
  const gone = await Promise.all(fromA.map(({ closed }) => Promise.race([closed.then(() => true), new Promise((resolve) => setTimeout(resolve, 300, false))])))
  t.equal(gone.filter(Boolean).length, 2, 'two of five idle connections from one address are closed')
  t.equal(refused()['pending-per-source'], 2)
  await t.resolves(pool.open(port, b).then(({ closed }) => Promise.race([closed.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 200, 'open'))])).then((s) => { t.equal(s, 'open') }), 'another address still gets in')
  // Terminals that CONNECT are held against maxConnectionsPerSource only.
  for (let i = 0; i < 5; i++) t.equal(await connackFrom(t, port, c!, `src-${i}`), 0)
  t.equal(await connackFrom(t, port, c!, 'src-6'), 'closed', 'the sixth from one address is refused')
  t.equal(await connackFrom(t, port, b!, 'other'), 0, 'another address still gets in')
  t.equal(refused()['per-source'], 1)
})

t.test('limits.maxConnections: a new connection takes the place of the oldest one without CONNECT', async (t) => {
  const { port, url, refused } = await startServer(t, { maxConnections: 5, connectionRatePerSecond: 0 })
  const pool = idlePool(t)
  const idle = []
  for (const source of loopbackSources(5)) idle.push(await pool.open(port, source))
  const started = performance.now()
  await connectClient(t, url, { clientId: 'real' })
  t.ok(performance.now() - started < 1000, 'the terminal got in at once')
  await idle[0]!.closed
  t.equal(refused().evicted, 1, 'the oldest idle connection was evicted')
  t.equal(pool.sockets.size, 4, 'the others stay')
})

t.test('10,000 idle sockets from 100 addresses cannot keep a real terminal out for more than a second', async (t) => {
  // The default limits but the rate: the flood is opened as fast as loopback takes it.
  const config = await tierConfigFile(t, '{ connectionRatePerSecond: 0 }')
  // The default limits.maxConnections (10,000) with the 20,000 descriptors of this machine: the descriptors
  // (3 per terminal) run out first, at about 6,600 connections, and the tier says so at start.
  const cli = await startCli(t, ['--config', config])
  const warning = await cli.waitForLog('file descriptor limit is below what limits.maxConnections needs (3 per terminal): raise LimitNOFILE or ulimit -n')
  t.match(warning, { limit: Number, needed: 30_000 }, 'the warning gives the limit and what is needed')
  const { port } = (await cli.waitForLog('listening')).mqtt as { port: number }
  const { port: httpPort } = (await cli.waitForLog('listening')).http as { port: number }
  const pool = idlePool(t)
  const sources = loopbackSources(100)
  let opened = 0
  const flood = async (): Promise<void> => {
    // 100 per address: at limits.maxPendingConnectsPerSource, as a careful attacker would stay.
    await Promise.all(sources.map(async (source) => {
      for (let i = 0; i < 100; i++) {
        await pool.open(port, source).then(() => { opened++ }, () => {})
      }
    }))
  }
  const started = performance.now()
  await flood()
  t.comment(`${opened} idle sockets opened in ${Math.round(performance.now() - started)} ms`)
  t.equal(opened, 10_000)
  const times: number[] = []
  let refilling = true
  // Keep the pressure on: every socket the tier closes is opened again from its address. Paced by the
  // closes: a loop that opens as fast as the kernel completes handshakes fills the listen queue, which
  // is the kernel's (its SYN retry costs a second) and not what the gate is for.
  const reopening = new Set<Promise<void>>()
  let reopenedCount = 0
  const reopenOnClose = (socket: net.Socket): void => {
    const source = socket.localAddress!
    socket.once('close', () => {
      if (!refilling) return
      const reopened: Promise<void> = pool.open(port, source).then(({ socket }) => { reopenedCount++; reopenOnClose(socket) }, () => {})
        .finally(() => reopening.delete(reopened))
      reopening.add(reopened)
    })
  }
  for (const socket of pool.sockets) reopenOnClose(socket)
  for (let i = 0; i < 10; i++) {
    const at = performance.now()
    await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: `real-${i}`, connectTimeout: 5000 })
    times.push(performance.now() - at)
  }
  refilling = false
  await Promise.all(reopening)
  t.ok(reopenedCount >= 10, `${reopenedCount} closed sockets were opened again meanwhile`)
  t.comment(`real terminals connected in ${times.map((ms) => ms.toFixed(0)).join(', ')} ms`)
  t.ok(Math.max(...times) < 1000, `every real terminal in under a second (slowest ${Math.max(...times).toFixed(0)} ms)`)
  const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text())
  t.comment(`refused: ${[...metrics].filter(([name, n]) => name.startsWith('dualbroker_refused_total') && n > 0).map(([name, n]) => `${name.replace(/.*reason="(.*)".*/, '$1')} ${n}`).join(', ')}`)
  t.ok(metrics.get(series('dualbroker_refused_total', { reason: 'evicted' }))! >= 10, 'idle connections were evicted for them, and counted')
  t.equal(metrics.get(series('dualbroker_clients')), 10, 'the ten terminals are connected')
  const dropLines = cli.logs.filter((line) => line.msg === 'connection dropped' && line.reason === 'evicted')
  const seconds = (performance.now() - started) / 1000
  t.ok(dropLines.length >= 1 && dropLines.length <= seconds + 2, `${dropLines.length} log lines for the evictions over ${seconds.toFixed(1)} s: at most one a second`)
  for (const socket of pool.sockets) socket.destroy()
  await cli.kill('SIGTERM')
})

t.test('a half-sent CONNECT is a connection without CONNECT', async (t) => {
  const { port, refused } = await startServer(t, { connectTimeoutMs: 200 })
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => { socket.destroy() })
  socket.on('connect', () => socket.write(CONNECT.subarray(0, CONNECT.length - 1)))
  await new Promise((resolve) => socket.once('close', resolve))
  t.equal(refused()['connect-timeout'], 1)
})
