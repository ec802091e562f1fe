import t from 'tap'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import type { AccessTierConfig } from '../src/index.js'
import { createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { startCli } from './support/cli-process.js'
import { connectClient } from './support/client.js'
import { FAILOVER_HEALTH, nextEvent, tempDir } from './support/durable.js'
import { recordLogs } from './support/log-recorder.js'

t.test('reconfigure applies policies, health timings and limits live; stored messages and terminals stay', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const logs = recordLogs()
  const config: AccessTierConfig = {
    listen: { host: '127.0.0.1', port: 0 },
    broker1: { url: b1.url },
    broker2: { url: b2.url },
    data: tempDir(t),
    health: FAILOVER_HEALTH,
    policies: [{ topic: 'q/#', mode: 'queue' }]
  }
  const server = await createAccessTier(config, { logger: logs })
  t.teardown(() => server.close())
  const { tier } = server
  const terminal = await connectClient(t, `mqtt://127.0.0.1:${server.addresses.mqtt.port}`, { clientId: 'stays' })
  let dropped = false
  terminal.once('close', () => { dropped = true })

  const failover = nextEvent(tier, 'failover')
  await b1.close()
  await failover
  for (let i = 0; i < 3; i++) await terminal.publishAsync(`q/${i}`, 'kept', { qos: 1 })
  t.equal(tier.state.pending.messages, 3, 'queued while Broker1 is down')

  const result = server.reconfigure({
    ...config,
    listen: { host: '127.0.0.1', port: 1 },
    defaultPolicy: 'drop',
    health: { ...FAILOVER_HEALTH, failbackDelayMs: 300, keepaliveSeconds: 5 },
    limits: { maxConnections: 1 },
    store: { fsync: 'always' }
  })
  t.same(result.applied.sort(), ['defaultPolicy', 'health.failbackDelayMs', 'limits.maxConnections'])
  t.same(result.restartNeeded.sort(), ['health.keepaliveSeconds', 'listen.port', 'store.fsync', 'store.maxBytes', 'store.maxMessages', 'store.overflow'])
  t.equal(tier.state.pending.messages, 3, 'the stored messages are untouched')
  t.equal(tier.state.clients, 1, 'the terminal is still online')

  await terminal.publishAsync('other/topic', 'gone', { qos: 1 })
  t.equal(tier.state.counters.dropped.policy, 1, 'the new default policy routes the next publish')

  const refused = logs.next('connection refused', (f) => f.reason === 'max-connections')
  const second = net.connect(server.addresses.mqtt.port, '127.0.0.1')
  second.on('error', () => {})
  await refused
  second.destroy()

  const again = server.reconfigure({ ...config, defaultPolicy: 'drop', health: { ...FAILOVER_HEALTH, failbackDelayMs: 300 }, limits: { maxConnections: 1 } })
  t.same(again, { applied: [], restartNeeded: [] }, 'what was applied is the running configuration now')
  t.throws(() => server.reconfigure({ ...config, defaultPolicy: 'sometimes' as 'drop' }), { name: 'ConfigError' }, 'an invalid one is refused whole')
  t.equal(tier.options.defaultPolicy, 'drop', 'and changes nothing')

  const failback = nextEvent(tier, 'failback')
  await b1.restart()
  await failback
  t.equal(tier.state.counters.replayed, 3, 'the stored messages were replayed to Broker1')
  t.notOk(dropped, 'the terminal never lost its connection')
})

t.test('SIGHUP reloads the config file, logs what changed and what needs a restart; a bad file keeps the running one', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const dir = tempDir(t)
  const file = join(dir, 'tier.yaml')
  const base = `broker1:\n  url: ${b1.url}\nbroker2:\n  url: ${b2.url}\nlisten:\n  host: 127.0.0.1\n  port: 0\ndata: ${join(dir, 'data')}\n`
  writeFileSync(file, base)
  const cli = await startCli(t, ['--config', file])
  const terminal = await connectClient(t, cli.url, { clientId: 'hup' })
  let dropped = false
  terminal.once('close', () => { dropped = true })

  writeFileSync(file, `${base}logLevel: debug\npolicies:\n  - { topic: "alarms/#", mode: queue, ttl: 1h }\nlimits:\n  maxInflight: 50\nhttp:\n  port: 0\n`)
  cli.child.kill('SIGHUP')
  const reloaded = await cli.waitForLog('config reloaded')
  t.same((reloaded.applied as string[]).sort(), ['limits.maxInflight', 'logLevel', 'policies'])
  t.same(reloaded.restartNeeded, ['http.port'])
  t.equal(reloaded.level, 30)

  writeFileSync(file, 'stor: {}\n')
  cli.child.kill('SIGHUP')
  const failed = await cli.waitForLog('config reload failed: the running configuration stays')
  t.match(failed, { level: 50, problems: ['stor: unknown key (did you mean "store"?)'] })

  await terminal.publishAsync('alarms/x', 'still served', { qos: 1 })
  t.notOk(dropped, 'the terminal kept its connection through both reloads')
  await cli.kill('SIGTERM')
  t.equal(await cli.exited, 0, 'and the server still stops cleanly')
  t.notOk(cli.logs.some((line) => line.msg === 'stopping' && line.signal === 'SIGHUP'), 'SIGHUP never stopped it')
})
