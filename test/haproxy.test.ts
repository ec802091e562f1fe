/**
 * Several tier nodes behind a real haproxy (configured from examples/haproxy.cfg) in front of one
 * pair of mosquittos, with persistent terminals publishing and subscribing at QoS 1 through it
 * (README "Several nodes"). One node is SIGKILLed, then another is stopped as in a rolling
 * upgrade (SIGTERM): the terminals of each are back through the others within seconds, with
 * their sessions, and nothing acknowledged is missing anywhere.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import t from 'tap'
import { startCli, type RunningCli } from './support/cli-process.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { startHaproxy, type BalancedNode } from './support/haproxy.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { duplicates, missing, parseSeq } from './support/sequence.js'
import { publishStream } from './support/stream.js'

const NODES = 3
const SUBSCRIBERS = 9
const PUBLISHERS = 3
const MESSAGES = 1500
const RATE = 150
const BACK_WITHIN_MS = 3000
const DRAIN_DELAY_MS = 1000

interface Terminal {
  readonly id: string
  readonly client: MqttClient
  readonly connects: Array<{ at: number, sessionPresent: boolean }>
  readonly closes: number[]
  readonly seqs: Map<string, number[]>
  /** Called on every connect and message. */
  readonly waiters: Set<() => void>
}

/** Resolves once `ready()` holds for `terminal`, re-checked on each of its connects and messages. */
function until (terminal: Terminal, ready: () => boolean, timeoutMs: number): Promise<boolean> {
  if (ready()) return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (result: boolean): void => {
      clearTimeout(timer)
      terminal.waiters.delete(check)
      resolve(result)
    }
    const check = (): void => { if (ready()) done(true) }
    const timer = setTimeout(() => done(false), timeoutMs)
    terminal.waiters.add(check)
  })
}

/** How one terminal fared after `since`: when it lost its node, when it was back, with or without its session. */
function move (terminal: Terminal, since: number): { lostAt: number, backAt: number, sessionPresent: boolean } | undefined {
  const lostAt = terminal.closes.find((at) => at >= since)
  if (lostAt === undefined) return undefined
  const back = terminal.connects.find((c) => c.at >= lostAt)
  return { lostAt, backAt: back?.at ?? Number.POSITIVE_INFINITY, sessionPresent: back?.sessionPresent === true }
}

t.test('nodes behind haproxy: a SIGKILLed node and a stopped node cost their terminals seconds and no message', { timeout: 150_000 }, async (t) => {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const dir = tempDir(t, 'haproxy-nodes-')
  const config = join(dir, 'node.yaml')
  writeFileSync(config, `http:\n  drainDelayMs: ${DRAIN_DELAY_MS}\n`)
  const nodes: Array<RunningCli & BalancedNode & { url: string }> = []
  for (let i = 1; i <= NODES; i++) {
    const cli = await startCli(t, ['--config', config, '--host', '127.0.0.1', '--port', '0', '--ws-port', '0', '--http-port', '0',
      '--broker1', b1.url, '--broker2', b2.url, '--data', join(dir, `node${i}`)])
    const listening = cli.logs.find((entry) => entry.msg === 'listening')!
    const port = (key: string): number => (listening[key] as { port: number }).port
    nodes.push({ ...cli, name: `node${i}`, mqttPort: port('mqtt'), wsPort: port('ws'), httpPort: port('http') })
  }
  const haproxy = await startHaproxy(t, nodes)
  t.match(haproxy.configText, /mode tcp[\s\S]*option httpchk GET \/health[\s\S]*http-check expect status 200/, 'the example\'s TCP mode and /health check')
  const clientsOf = async (node: BalancedNode): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/health`)
    return ((await res.json()) as { clients: number }).clients
  }

  const terminal = async (id: string, subscribe?: string, url = haproxy.mqttUrl): Promise<Terminal> => {
    const client = await connectClient(t, url, { clientId: id, clean: false, reconnectPeriod: 100, keepalive: 30 })
    const seen: Terminal = { id, client, connects: [], closes: [], seqs: new Map(), waiters: new Set() }
    const wake = (): void => { for (const check of [...seen.waiters]) check() }
    client.on('connect', (connack) => {
      seen.connects.push({ at: Date.now(), sessionPresent: connack.sessionPresent })
      wake()
    })
    client.on('close', () => seen.closes.push(Date.now()))
    if (subscribe !== undefined) {
      client.on('message', (topic, payload) => {
        const seq = parseSeq(payload)
        if (seq === undefined) return
        if (!seen.seqs.has(topic)) seen.seqs.set(topic, [])
        seen.seqs.get(topic)!.push(seq)
        wake()
      })
      await client.subscribeAsync(subscribe, { qos: 1 })
    }
    return seen
  }
  const atBroker1 = await record(t, b1.url, 'ha/#', { clientId: 'ha-oracle', qos: 1 })
  // One subscriber comes in over WebSocket, through the example's second frontend.
  const subscribers = await Promise.all(Array.from({ length: SUBSCRIBERS }, (_, i) => terminal(`ha-sub-${i}`, 'ha/#', i === 0 ? haproxy.wsUrl : haproxy.mqttUrl)))
  const publishers = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => terminal(`ha-pub-${i}`)))
  const everyone = [...subscribers, ...publishers]
  const perNode = await Promise.all(nodes.map(clientsOf))
  t.ok(perNode.every((n) => n > 0), `haproxy spread the terminals over every node (${perNode.join(', ')})`)

  /** The live node holding the most terminals. */
  const busiest = async (): Promise<typeof nodes[number]> => {
    const alive = nodes.filter((node) => node.child.exitCode === null && node.child.signalCode === null)
    const counts = await Promise.all(alive.map(clientsOf))
    return alive[counts.indexOf(Math.max(...counts))]!
  }
  let killedAt = 0
  let stopped: { at: number, node: typeof nodes[number], down: { at: number, checkCode: string }, exit: number | NodeJS.Signals | null } | undefined
  const kill = async (): Promise<void> => {
    const node = await busiest()
    killedAt = Date.now()
    await node.kill('SIGKILL')
  }
  const stop = async (): Promise<void> => {
    const node = await busiest()
    const at = Date.now()
    const gone = node.kill('SIGTERM')
    const down = await haproxy.waitFor('tier_mqtt', node.name, 'DOWN', 5000)
    await gone
    stopped = { at, node, down, exit: await node.exited }
  }
  const phases: Array<Promise<void>> = []
  const streams = await Promise.all(publishers.map((publisher, i) => publishStream(publisher.client, {
    topic: `ha/${i}`, count: MESSAGES, window: 20, rate: RATE,
    ...(i === 0 && {
      onAck: (acked: number) => {
        if (acked === 300) phases.push(kill())
        if (acked === 900) phases.push(stop())
      }
    })
  })))
  await Promise.all(phases)
  t.equal(streams.reduce((sum, s) => sum + s.failed, 0), 0, 'no publish failed')
  const connected = await Promise.all(everyone.map((x) => until(x, () => x.client.connected, 10_000)))
  t.ok(connected.every(Boolean), 'every terminal is connected again')

  const killed = everyone.map((x) => move(x, killedAt)).filter((m) => m !== undefined && m.lostAt < stopped!.at)
  t.ok(killed.length > 0, `${killed.length} terminals lost their node to the SIGKILL`)
  const killedBackMs = Math.max(...killed.map((m) => m!.backAt - killedAt))
  t.ok(killedBackMs <= BACK_WITHIN_MS, `every one back through another node ${killedBackMs} ms after the kill (bound ${BACK_WITHIN_MS} ms)`)
  t.ok(killed.every((m) => m!.sessionPresent), 'each with session present')

  const { node, down, exit, at } = stopped!
  t.equal(exit, 0, `${node.name} stopped cleanly on SIGTERM`)
  t.equal(down.checkCode, '503', 'haproxy took it out because /health answered 503')
  const moved = everyone.map((x) => move(x, at)).filter((m) => m !== undefined)
  t.ok(moved.length > 0, `${moved.length} terminals moved off the stopping node`)
  const firstLetGo = Math.min(...moved.map((m) => m!.lostAt))
  t.ok(down.at <= firstLetGo, `haproxy marked it down ${down.at - at} ms after SIGTERM, before the node let its first terminal go (${firstLetGo - at} ms)`)
  const movedBackMs = Math.max(...moved.map((m) => m!.backAt - m!.lostAt))
  t.ok(movedBackMs <= BACK_WITHIN_MS, `every one back ${movedBackMs} ms after it was let go (bound ${BACK_WITHIN_MS} ms)`)
  t.ok(moved.every((m) => m!.sessionPresent), 'each with session present')
  // (pino writes asynchronously: its last lines may reach the pipe in either order, so only presence is checked.)
  t.ok(node.logs.some((entry) => entry.msg === 'pending store closed'), 'its store was flushed and closed before it exited')
  t.comment(`SIGKILL: ${killed.length} terminals back within ${killedBackMs} ms; SIGTERM: haproxy down after ${down.at - at} ms, ${moved.length} terminals back within ${movedBackMs} ms of being let go`)

  const total = PUBLISHERS * MESSAGES
  await atBroker1.waitFor(total, 20_000)
  let missingAtBroker1 = 0
  for (const [i, s] of streams.entries()) missingAtBroker1 += missing(s.acked, atBroker1.sequences(`ha/${i}`)).length
  t.equal(missingAtBroker1, 0, `every acked publish reached Broker1 (${total})`)
  let lost = 0
  let copies = 0
  for (const subscriber of subscribers) {
    for (const [i, s] of streams.entries()) {
      const seqs = (): number[] => subscriber.seqs.get(`ha/${i}`) ?? []
      await until(subscriber, () => missing(s.acked, seqs()).length === 0, 20_000)
      lost += missing(s.acked, seqs()).length
      copies += duplicates(seqs())
    }
  }
  t.equal(lost, 0, `no subscriber missed a message (${SUBSCRIBERS} × ${total})`)
  t.comment(`duplicates at subscribers (at least once, resent after a node loss): ${copies}`)
})
