// The benchmark cases. Each `run*` function is one run of one mode ("tier":
// through `node dist/src/cli.js`, or "direct": the baseline, straight at the
// same mosquitto) with its own fresh brokers, tier and worker processes, and
// returns raw numbers; `CASES` turns the alternated runs into figures.
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { BENCH, DIRECT_PROTOCOL, HAProxy, Mosquitto, ROOT, Relay, Tier, Worker, build, cpuOf, freePort, memOf, syscallsOf, mono, sampleRss, tmpDir } from './lib/procs.mjs'
import { figure } from './lib/stats.mjs'
import { runSessionLoss } from './session-loss.mjs'

const TOPIC = 'bench/t'
const WINDOW = 100

/** Options shared by all runs (set by run.mjs): profiling of the tier process. */
export const settings = { profileDir: undefined, heapSnapshots: false, quick: false, whatIfNoDelay: false, raw: [] }

/** Everything one run started, closed in reverse order whatever happens. */
class Scope {
  constructor () { this.items = [] }
  add (item) { this.items.push(item); return item }
  async close () {
    for (const item of this.items.reverse()) {
      try {
        if (item instanceof Tier) {
          // Graceful only when profiling: the CPU profile is written on exit.
          if (settings.profileDir !== undefined) await item.stop()
          else item.entry.child.kill('SIGKILL')
        } else if (item instanceof Mosquitto) await item.kill('SIGKILL')
        else await item.close()
      } catch {}
    }
    this.items = []
  }
}

async function withScope (fn) {
  const scope = new Scope()
  try {
    return await fn(scope)
  } finally {
    await scope.close()
  }
}

let profileSeq = 0
function tierNodeArgs (label) {
  // node flags for the tier process only (the clients and brokers keep theirs): what-ifs such as
  // a smaller young generation, measured without touching the product's bin
  const args = process.env.BENCH_TIER_NODE_ARGS?.split(' ').filter(Boolean) ?? []
  if (settings.whatIfNoDelay) args.push(`--import=${new URL('./lib/nodelay.mjs', import.meta.url).href}`)
  if (settings.profileDir !== undefined) {
    const dir = path.join(settings.profileDir, `${String(++profileSeq).padStart(2, '0')}-${label}`)
    fs.mkdirSync(dir, { recursive: true })
    args.push('--cpu-prof', `--cpu-prof-dir=${dir}`, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`)
  }
  return args
}

async function startTier (scope, label, broker1, broker2, config = {}, data) {
  return scope.add(await Tier.start({ broker1, broker2, config, data, nodeArgs: tierNodeArgs(label) }))
}

async function brokers (scope, { startB1 = true } = {}) {
  const b1 = startB1 ? scope.add(await Mosquitto.start('b1')) : scope.add(new Mosquitto('b1', await freePort()))
  const b2 = scope.add(await Mosquitto.start('b2'))
  return { b1, b2 }
}

const worker = async (scope, script, name) => scope.add(await Worker.start(script, name))

function rate (count, ms) { return ms > 0 ? count / (ms / 1000) : NaN }

/** Acked sequence numbers that reached none of the given arrival bitmaps. */
function lost (ackedBits, ...seens) {
  let n = 0
  for (let seq = 0; seq < ackedBits.length; seq++) {
    if (ackedBits[seq] !== 1) continue
    if (!seens.some((seen) => seen !== undefined && seq < seen.length && seen[seq] === 1)) n++
  }
  return n
}

function missingSeqs (ackedBits, ...seens) {
  const out = []
  for (let seq = 0; seq < ackedBits.length; seq++) {
    if (ackedBits[seq] === 1 && !seens.some((seen) => seen !== undefined && seq < seen.length && seen[seq] === 1)) out.push(seq)
  }
  return out
}

// ---------------------------------------------------------------- throughput, latency

const WARM_MS = 1000

/**
 * One publisher → one subscriber on one topic. mode "tier": both through the
 * tier; "direct": both at mosquitto (Broker1). For diagnosis, `legs` may put
 * only one side through the tier: 'pub' (publisher via tier, subscriber
 * direct) or 'sub' (the other way round).
 */
export async function runFlow (mode, { qos, rate: msgRate = 0, measureMs, warmMs = WARM_MS, earlyMs = 0, latency = false, legs = 'both', tierConfig = {}, subClean = true }) {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope)
    const tier = mode === 'tier' ? await startTier(scope, `flow-qos${qos}`, b1.url, b2.url, tierConfig) : undefined
    // 'relay-node' / 'relay-haproxy': a byte pipe in the tier's place (the relay-floor case)
    const relay = mode.startsWith('relay-') ? scope.add(await Relay.start(mode.slice('relay-'.length), b1.port)) : undefined
    const middle = tier ?? relay
    const url = middle?.url ?? b1.url
    const sub = await worker(scope, 'subscriber.mjs')
    const pub = await worker(scope, 'publisher.mjs')
    // The baseline's clients speak DIRECT_PROTOCOL, through a byte pipe too; a terminal of the tier speaks 3.1.1 (Aedes).
    const protocolVersion = mode === 'tier' ? 4 : DIRECT_PROTOCOL
    await sub.call('connect', { label: 'sub', url: legs === 'pub' ? b1.url : url, topic: TOPIC, qos, latency, clean: subClean, protocolVersion })
    await pub.call('connect', { urls: [legs === 'sub' ? b1.url : url], clientId: 'bench-pub', topic: TOPIC, protocolVersion })
    const t0 = mono()
    // earlyMs: latency also over the first seconds after WARM_MS, apart from the window measured after warmMs
    const early = earlyMs > 0 ? { from: t0 + WARM_MS, to: t0 + WARM_MS + earlyMs } : undefined
    await sub.call('window', { from: t0 + warmMs, to: t0 + warmMs + measureMs, early })
    await pub.call('start', { qos, window: WINDOW, rate: msgRate })
    // CPU time of the tier and of Broker1 over the same window as the count: µs per message delivered.
    await sleep(t0 + warmMs - mono())
    const cpuFrom = [cpuOf(middle?.pid), cpuOf(b1.pid)]
    const syscallsFrom = [syscallsOf(middle?.pid), syscallsOf(b1.pid)]
    await sleep(t0 + warmMs + measureMs - mono())
    const cpuTo = [cpuOf(middle?.pid), cpuOf(b1.pid)]
    const syscallsTo = [syscallsOf(middle?.pid), syscallsOf(b1.pid)]
    // What was in flight at the stop is waited for (bounded), then what the broker still queues for
    // the subscriber (a direct QoS 2 publisher outruns its subscriber): until nothing more arrives
    // for a second, at most 30 s. What was acked and never arrived is lost.
    const published = await pub.call('stop', { drainMs: 2000 })
    let report = await sub.call('report', { seen: true })
    let got = report.labels.sub[0]
    for (let waited = 0, before = -1; qos > 0 && waited < 30_000 && got.received !== before && lost(published.ackedBits, got.seen) > 0; waited += 1000) {
      before = got.received
      await sleep(1000)
      report = await sub.call('report', { seen: true })
      got = report.labels.sub[0]
    }
    return {
      msgsPerSec: rate(got.inWindow, measureMs),
      lost: qos === 0 ? 0 : lost(published.ackedBits, got.seen),
      published: published.sent,
      latency: report.latency,
      latencyEarly: report.latencyEarly,
      tierCpuUsPerMsg: (cpuTo[0] - cpuFrom[0]) / got.inWindow,
      brokerCpuUsPerMsg: (cpuTo[1] - cpuFrom[1]) / got.inWindow,
      tierSyscallsPerMsg: (syscallsTo[0] - syscallsFrom[0]) / got.inWindow,
      brokerSyscallsPerMsg: (syscallsTo[1] - syscallsFrom[1]) / got.inWindow
    }
  })
}

/**
 * A burst of thousands of terminals from one address measures the tier, not its connection
 * limits: the rate limiter, the listener cap and the per-source caps (every bench terminal
 * comes from 127.0.0.1) are off for the cases that make one.
 */
const BURST_LIMITS = { connectionRatePerSecond: 0, maxConnections: 0, maxConnectionsPerSource: 0, maxPendingConnectsPerSource: 0 }

// ---------------------------------------------------------------- failover

const FAILOVER_RATE = 500

/**
 * 500 msg/s QoS 1; Broker1 is killed (SIGKILL) or frozen (SIGSTOP) after 2 s.
 * Observers straight at each broker time the gap between the last arrival at
 * Broker1 and the first at Broker2. The baseline is a publisher connected
 * straight to Broker1 doing its own failover to Broker2 (keepalive 1 s, like
 * the tier's health link).
 */
export async function runFailover (mode, { signal }) {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope)
    const obs = await worker(scope, 'subscriber.mjs', 'observers')
    await obs.call('connect', { label: 'b1', url: b1.url, topic: TOPIC, qos: 1 })
    await obs.call('connect', { label: 'b2', url: b2.url, topic: TOPIC, qos: 1 })
    let tier
    const pub = await worker(scope, 'publisher.mjs')
    if (mode === 'tier') {
      tier = await startTier(scope, `failover-${signal}`, b1.url, b2.url)
      await pub.call('connect', { urls: [tier.url], clientId: 'bench-pub', topic: TOPIC })
    } else {
      await pub.call('connect', { urls: [b1.url, b2.url], clientId: 'bench-pub', topic: TOPIC, failover: true, keepalive: 1 })
    }
    await pub.call('start', { qos: 1, window: WINDOW, rate: FAILOVER_RATE })
    await sleep(2000)
    const logMark = tier?.logs.length ?? 0
    const hitAt = mono()
    const hitWall = Date.now()
    b1.signal(signal)
    await sleep(signal === 'SIGSTOP' ? 4000 : 2500)
    const published = await pub.call('stop', { drainMs: 3000 })
    await sleep(300)
    const report = await obs.call('report', { seen: true })
    const [at1] = report.labels.b1
    const [at2] = report.labels.b2
    let detectMs
    if (mode === 'tier') {
      const down = await tier.waitForLog('broker down', (e) => e.broker === 'broker1', 1, logMark).catch(() => undefined)
      detectMs = down === undefined ? NaN : down.time - hitWall
    } else {
      detectMs = published.failovers.length > 0 ? published.failovers[0].at - hitAt : NaN
    }
    await b1.kill('SIGKILL')
    return {
      gapMs: at2?.firstAt !== undefined && at1?.lastAt !== undefined ? at2.firstAt - at1.lastAt : NaN,
      lost: lost(published.ackedBits, at1?.seen, at2?.seen),
      detectMs,
      acked: published.acked,
      sent: published.sent,
      firstAtB2AfterHitMs: at2?.firstAt !== undefined ? at2.firstAt - hitAt : NaN
    }
  })
}

// ---------------------------------------------------------------- failback

/**
 * 500 msg/s QoS 1 through the tier (policy `both`); Broker1 is killed after 1.5 s
 * and restarted 3 s later. Once the tier has replayed the backlog to Broker1 and
 * failed back, the observer at Broker1 must have every acked message in order,
 * and the publisher must never have been held up (window of 100 full).
 */
export async function runFailback () {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope)
    const obs = await worker(scope, 'subscriber.mjs', 'observers')
    await obs.call('connect', { label: 'b1', url: b1.url, topic: TOPIC, qos: 1, reconnect: true })
    await obs.call('connect', { label: 'b2', url: b2.url, topic: TOPIC, qos: 1 })
    // The status server's /health (where the tier has it) tells what is left in the store.
    const tier = await startTier(scope, 'failback', b1.url, b2.url, { http: { host: '127.0.0.1', port: 0 } })
    const pub = await worker(scope, 'publisher.mjs')
    await pub.call('connect', { urls: [tier.url], clientId: 'bench-pub', topic: TOPIC })
    await pub.call('start', { qos: 1, window: WINDOW, rate: FAILOVER_RATE, recordAcks: true })
    await sleep(1500)
    await b1.kill('SIGKILL')
    await sleep(3000)
    const logMark = tier.logs.length
    const restartAt = mono()
    const restartWall = Date.now()
    await b1.start()
    const failback = await tier.waitForLog('failback', () => true, 30_000, logMark)
    await sleep(1500)
    const published = await pub.call('stop', { drainMs: 3000 })
    await sleep(300)
    const report = await obs.call('report', { seen: true })
    const health = await tier.health()
    const [before, after] = report.labels.b1
    // Publisher-side view of the phase from the restart on.
    let maxGap = 0
    let maxLatency = 0
    let prev
    for (let i = 0; i < published.ackAt.length; i++) {
      const at = published.ackAt[i]
      if (at < restartAt) continue
      if (prev !== undefined) maxGap = Math.max(maxGap, at - prev)
      maxLatency = Math.max(maxLatency, published.ackLatency[i])
      prev = at
    }
    const stallMs = published.blocked.reduce((sum, [from, to]) => sum + Math.max(0, to - Math.max(from, restartAt)), 0)
    return {
      stallMs,
      orderViolations: after?.orderViolations ?? NaN,
      missingAtBroker1: lost(published.ackedBits, before?.seen, after?.seen),
      duplicatesAtBroker1: after?.duplicates ?? NaN,
      maxAckGapMs: maxGap,
      maxAckLatencyMs: maxLatency,
      restartToFailbackMs: failback.time - restartWall,
      replayedAtBroker1: after?.unique ?? 0,
      pendingAfter: health?.pending?.messages ?? NaN,
      missingSeqs: missingSeqs(published.ackedBits, before?.seen, after?.seen).slice(0, 20)
    }
  })
}

// ---------------------------------------------------------------- store ingest and replay

/**
 * Store ingest. Tier: Broker1 down, policy `queue`, `store.fsync` as given
 * (default `batch`): QoS 1 publishes as fast as a window of 100 allows go into
 * the pending store; the figure is PUBACKs per second at the publisher over
 * `measureMs` after a 1 s warm-up. Baseline: the same publisher straight at mosquitto.
 */
export async function runIngest (mode, { measureMs, fsync = 'batch' }) {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope, { startB1: mode !== 'tier' })
    const pub = await worker(scope, 'publisher.mjs')
    let tier
    if (mode === 'tier') {
      tier = await startTier(scope, `ingest-${fsync}`, b1.url, b2.url, { defaultPolicy: 'queue', store: { fsync } })
      await pub.call('connect', { urls: [tier.url], clientId: 'bench-pub', topic: TOPIC })
    } else {
      await pub.call('connect', { urls: [b1.url], clientId: 'bench-pub', topic: TOPIC })
    }
    const t0 = mono()
    await pub.call('start', { qos: 1, window: WINDOW, ackWindow: { from: t0 + WARM_MS, to: t0 + WARM_MS + measureMs } })
    await sleep(WARM_MS + measureMs + 50)
    const published = await pub.call('stop', { drainMs: 0 })
    return { ingest: rate(published.ackedInWindow, measureMs), acked: published.acked }
  })
}

/** Writes a backlog of `count` messages into `<data>/pending` with the store's own code (bench/prefill.mjs). */
async function prefill (scope, data, count) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(BENCH, 'prefill.mjs'), path.join(data, 'pending'), String(count), TOPIC, build.dist], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    scope.add({ close: async () => { child.kill('SIGKILL') } })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.once('exit', (code) => code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`prefill exited ${code}`)))
  })
}

/**
 * Replay. Tier: a backlog of `count` messages prefilled into the tier's store
 * (the store's own code, fsync never: ingest is the ingest case's job); the
 * tier starts with Broker1 up and replays it at once. The observer at Broker1
 * times first → last arrival; VmRSS of the tier is sampled every 50 ms and
 * VmHWM read at the end. Baseline: the same `count` messages published
 * straight to mosquitto by one client with a window of 100, as the replay does.
 */
export async function runReplay (mode, { count, label = 'replay', onTier }) {
  return withScope(async (scope) => {
    const obs = await worker(scope, 'subscriber.mjs', 'observers')
    if (mode === 'tier') {
      const data = path.join(tmpDir(label), 'data')
      fs.mkdirSync(data, { recursive: true })
      const filled = await prefill(scope, data, count)
      const { b1, b2 } = await brokers(scope)
      await obs.call('connect', { label: 'b1', url: b1.url, topic: TOPIC, qos: 1 })
      const startedAt = mono()
      const tier = await startTier(scope, label, b1.url, b2.url, { store: { fsync: 'batch', maxMessages: count * 2 } }, data)
      const rss = sampleRss(tier.pid, 50)
      onTier?.(tier)
      const done = await obs.call('waitFor', { label: 'b1', count, timeoutMs: count > 200_000 ? 240_000 : 90_000 })
      const mem = rss.stop()
      const [at1] = (await obs.call('report')).labels.b1
      return {
        prefillMs: filled.ms,
        complete: done.ok,
        replayed: at1.unique,
        replay: rate(at1.unique - 1, at1.lastAt - at1.firstAt),
        startToFirstMs: at1.firstAt - startedAt,
        peakRssMb: mem.peakKb / 1024,
        hwmMb: mem.hwmKb / 1024,
        orderViolations: at1.orderViolations
      }
    }
    const { b1 } = await brokers(scope)
    await obs.call('connect', { label: 'b1', url: b1.url, topic: TOPIC, qos: 1 })
    const pub = await worker(scope, 'publisher.mjs')
    await pub.call('connect', { urls: [b1.url], clientId: 'bench-pub', topic: TOPIC })
    await pub.call('start', { qos: 1, window: WINDOW, count })
    const done = await obs.call('waitFor', { label: 'b1', count, timeoutMs: 90_000 })
    const [at1] = (await obs.call('report')).labels.b1
    return { complete: done.ok, replayed: at1.unique, replay: rate(at1.unique - 1, at1.lastAt - at1.firstAt), orderViolations: at1.orderViolations }
  })
}

// ---------------------------------------------------------------- terminals

/**
 * `n` idle terminals (clean, keepalive 60 s) connect at once. Tier: RSS of the
 * tier process after minus before, per terminal (its downstream connection and
 * both upstream sessions); baseline: the same at mosquitto directly.
 */
export async function runTerminals (mode, { n, settleMs = 0, idleSamplesMs = [] }) {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope)
    let tier
    // The burst measures the tier, not its connection rate limiter (default 1,000/s per listener,
    // which refuses most of a 5,000 burst): the limiter is off here.
    if (mode === 'tier') tier = await startTier(scope, `terminals-${n}`, b1.url, b2.url, { limits: BURST_LIMITS })
    const pid = tier?.pid ?? b1.pid
    const url = tier?.url ?? b1.url
    const terms = await worker(scope, 'terminals.mjs')
    await sleep(1000)
    // settleMs (the tier): node gives back what its start-up and a burst took only after some
    // seconds of quiet (V8's memory reducer), so the idle figure is taken settled at both ends.
    const settle = mode === 'tier' ? settleMs : 0
    await sleep(settle)
    const snapshots = tier !== undefined && settings.profileDir !== undefined && settings.heapSnapshots
    if (snapshots) {
      tier.entry.child.kill('SIGUSR2') // --heapsnapshot-signal: a snapshot before the terminals connect
      await sleep(4000)
    }
    const before = memOf(pid).rss
    const result = await terms.call('connect', { url, n, prefix: `t${n}` })
    await sleep(2000)
    const after = memOf(pid).rss
    if (settle > 0) await sleep(settle - 2000)
    const settled = memOf(pid).rss
    // RSS later in the idle period (exp-terminals.mjs --idle): [ms since connected, KB per terminal, MB]
    const idle = []
    let waited = Math.max(2000, settle)
    for (const at of idleSamplesMs) {
      await sleep(at - waited)
      waited = at
      const rss = memOf(pid).rss
      idle.push([at, (rss - before) / n, rss / 1024])
    }
    const alive = await terms.call('alive')
    if (snapshots) {
      tier.entry.child.kill('SIGUSR2')
      await sleep(n >= 5000 ? 15_000 : 5000)
    }
    return {
      connectMs: result.ms,
      connected: result.connected,
      alive,
      failed: result.failed,
      errors: result.errors,
      kbPerTerminal: (after - before) / n,
      kbPerTerminalSettled: (settled - before) / n,
      rssBeforeMb: before / 1024,
      rssAfterMb: after / 1024,
      ...(idle.length > 0 ? { kbPerTerminalLater: idle } : {})
    }
  })
}

/**
 * n persistent terminals subscribe and go away; `queued` QoS 1 messages each
 * are published at Broker1; then all reconnect at `perSecond`. Times every
 * CONNACK and the arrival of the last message.
 */
export async function runReconnectStorm (mode, { n, queued, perSecond }) {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope)
    const tier = mode === 'tier' ? await startTier(scope, 'reconnect-storm', b1.url, b2.url, { limits: BURST_LIMITS }) : undefined
    const url = tier?.url ?? b1.url
    const storm = await worker(scope, 'storm.mjs')
    await storm.call('prepare', { url, n, prefix: `storm-${mode}` })
    await storm.call('publish', { url: b1.url, n, queued, prefix: `storm-${mode}` })
    return storm.call('reconnect', { url, n, queued, perSecond, prefix: `storm-${mode}` })
  })
}

// ---------------------------------------------------------------- several nodes

/** Nodes as the terminals' benches run them (no connection rate limit), each with its status server for haproxy's check. */
const nodeConfig = { limits: BURST_LIMITS, http: { host: '127.0.0.1', port: 0 } }

/**
 * `n` idle terminals connect at once. Mode "tier": through haproxy to 2 nodes; baseline
 * ("direct"): straight at 1 node. RSS per terminal = the nodes' RSS growth, summed, over `n`
 * (haproxy's own is a figure of its own).
 */
export async function runNodes (mode, { n, settleMs = 0 }) {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope)
    const nodes = []
    for (let i = 0; i < (mode === 'tier' ? 2 : 1); i++) nodes.push(await startTier(scope, `nodes-${mode}-${i}`, b1.url, b2.url, nodeConfig))
    const proxy = mode === 'tier' ? scope.add(await HAProxy.start(nodes)) : undefined
    const terms = await worker(scope, 'terminals.mjs')
    await sleep(1000 + settleMs) // settled, as in runTerminals (both modes are tier nodes)
    const before = nodes.map((node) => memOf(node.pid).rss)
    const proxyBefore = proxy === undefined ? 0 : memOf(proxy.pid).rss
    const result = await terms.call('connect', { url: proxy?.url ?? nodes[0].url, n, prefix: `nodes-${mode}` })
    await sleep(2000)
    const grown = nodes.reduce((sum, node, i) => sum + memOf(node.pid).rss - before[i], 0)
    if (settleMs > 0) await sleep(settleMs - 2000)
    const grownSettled = nodes.reduce((sum, node, i) => sum + memOf(node.pid).rss - before[i], 0)
    const perNode = await Promise.all(nodes.map((node) => node.health().then((h) => h?.clients ?? NaN)))
    return {
      connectMs: result.ms,
      connected: result.connected,
      alive: await terms.call('alive'),
      failed: result.failed,
      errors: result.errors,
      kbPerTerminal: grown / n,
      kbPerTerminalSettled: grownSettled / n,
      haproxyKbPerTerminal: proxy === undefined ? NaN : (memOf(proxy.pid).rss - proxyBefore) / n,
      minShare: Math.min(...perNode) / n
    }
  })
}

/**
 * 2 nodes behind haproxy, `n` persistent terminals publishing QoS 1 at `rate` msg/s in all, each
 * subscribed to its own topic. After 3 s the node holding the most terminals is SIGKILLed:
 * the time until every one of its terminals is back (CONNACK through the other node), and the
 * acked messages missing at Broker1 or at their terminal.
 */
export async function runNodeLoss ({ n, rate: total }) {
  return withScope(async (scope) => {
    const { b1, b2 } = await brokers(scope)
    const nodes = [await startTier(scope, 'node-loss-0', b1.url, b2.url, nodeConfig), await startTier(scope, 'node-loss-1', b1.url, b2.url, nodeConfig)]
    const proxy = scope.add(await HAProxy.start(nodes))
    const load = await worker(scope, 'node-loss.mjs')
    await load.call('start', { url: proxy.url, broker1: b1.url, n, ratePerTerminal: total / n })
    await sleep(3000)
    const counts = await Promise.all(nodes.map((node) => node.health().then((h) => h?.clients ?? 0)))
    const victim = nodes[counts.indexOf(Math.max(...counts))]
    const since = Date.now()
    victim.entry.child.kill('SIGKILL')
    await sleep(4000)
    return load.call('stop', { since })
  })
}

// ---------------------------------------------------------------- the cases

/** Runs `fn(mode, i)` `runs` times per mode, alternating which goes first. */
async function alternate (runs, fn, log) {
  const out = { tier: [], direct: [] }
  for (let i = 0; i < runs; i++) {
    for (const mode of i % 2 === 0 ? ['tier', 'direct'] : ['direct', 'tier']) {
      const started = Date.now()
      const r = await fn(mode, i)
      out[mode].push(r)
      settings.raw.push({ mode, run: i + 1, ...r })
      log(`  run ${i + 1}/${runs} ${mode}: ${brief(r)} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
    }
  }
  return out
}

function brief (r) {
  return Object.entries(r).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`).join(' ')
}

const pick = (rows, key) => rows.map((r) => r[key])

/** One publisher → one subscriber as fast as the window allows, tier vs direct, goal a ratio. */
function throughputCase (title, flow, minimumRatio) {
  return {
    title,
    async run ({ runs, log }) {
      const measureMs = settings.quick ? 2000 : 3000
      const r = await alternate(runs, (mode) => runFlow(mode, { ...flow, measureMs }), log)
      return [
        figure({ name: 'msgs/s', tier: pick(r.tier, 'msgsPerSec'), baseline: pick(r.direct, 'msgsPerSec'), compareBy: 'ratio', goal: { on: 'compared', op: '>=', value: minimumRatio } }),
        ...(flow.qos === 0 ? [] : [figure({ name: 'acked messages lost', tier: pick(r.tier, 'lost'), baseline: pick(r.direct, 'lost'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 })]),
        figure({ name: 'tier CPU per message', unit: 'µs', tier: pick(r.tier, 'tierCpuUsPerMsg'), digits: 1 }),
        figure({ name: 'Broker1 CPU per message (tier: behind the tier; baseline: direct)', unit: 'µs', tier: pick(r.tier, 'brokerCpuUsPerMsg'), baseline: pick(r.direct, 'brokerCpuUsPerMsg'), digits: 1 }),
        figure({ name: 'tier read + write syscalls per message', tier: pick(r.tier, 'tierSyscallsPerMsg'), digits: 2 }),
        figure({ name: 'Broker1 read + write syscalls per message (as above)', tier: pick(r.tier, 'brokerSyscallsPerMsg'), baseline: pick(r.direct, 'brokerSyscallsPerMsg'), digits: 2 })
      ]
    }
  }
}

export const CASES = {
  'throughput-qos1': throughputCase('throughput QoS 1', { qos: 1 }, 0.8),
  'throughput-qos1-persistent': throughputCase('throughput QoS 1 to a persistent (clean: false) subscriber', { qos: 1, subClean: false }, 0.8),
  'throughput-qos2': throughputCase('throughput QoS 2 (terminal publishes and deliveries)', { qos: 2 }, 0.8),
  'reconnect-storm': {
    title: '1,000 persistent terminals reconnect at 500/s to 10 queued QoS 1 messages each',
    async run ({ runs, log }) {
      const r = await alternate(runs, (mode) => runReconnectStorm(mode, { n: 1000, queued: 10, perSecond: 500 }), log)
      return [
        figure({ name: 'CONNACK p99', unit: 'ms', tier: pick(r.tier, 'connackP99'), baseline: pick(r.direct, 'connackP99'), compareBy: 'added', goal: { on: 'compared', op: '<=', value: 50 } }),
        figure({ name: 'CONNACK p50', unit: 'ms', tier: pick(r.tier, 'connackP50'), baseline: pick(r.direct, 'connackP50'), compareBy: 'added' }),
        figure({ name: 'messages delivered (of 10,000)', tier: pick(r.tier, 'delivered'), baseline: pick(r.direct, 'delivered'), goal: { on: 'tier', op: '>=', value: 10_000 }, digits: 0 }),
        figure({ name: 'sessions present (of 1,000)', tier: pick(r.tier, 'sessionPresent'), baseline: pick(r.direct, 'sessionPresent'), digits: 0 }),
        figure({ name: 'first reconnect → last message', unit: 'ms', tier: pick(r.tier, 'lastMs'), baseline: pick(r.direct, 'lastMs'), compareBy: 'ratio', goal: { on: 'compared', op: '<=', value: 1.5 } })
      ]
    }
  },
  'throughput-qos0': throughputCase('throughput QoS 0', { qos: 0 }, 0.5),
  latency: {
    title: 'latency @2,000 msg/s QoS 1, after 10 s at that rate; and over the first 5 s',
    async run ({ runs, log }) {
      // Steady state is what a running tier shows: the window starts after 10 s at the rate. A tier
      // just started (JIT, heap) is slower for a few seconds at this low rate: that window (1–6 s,
      // the only one before 2026-12-06) is reported apart.
      const flow = { qos: 1, rate: 2000, measureMs: settings.quick ? 3000 : 5000, warmMs: settings.quick ? 4000 : 10_000, earlyMs: settings.quick ? 3000 : 5000, latency: true }
      const r = await alternate(runs, (mode) => runFlow(mode, flow), log)
      const lat = (rows, p, key = 'latency') => rows.map((x) => x[key]?.[p] ?? NaN)
      // What-if: no per-message retention (resend window, MQTT 3.1.1 copy window), to show what it costs in GC.
      const retainNothing = { health: { resendWindowMs: 0 }, dedup: { windowMs: 0 } }
      const lean = []
      for (let i = 0; i < (settings.quick ? 1 : 2); i++) {
        lean.push(await runFlow('tier', { ...flow, tierConfig: retainNothing }))
        log(`  what-if run ${i + 1} tier, resendWindowMs 0 + dedup.windowMs 0: p50=${lean.at(-1).latency?.p50} p99=${lean.at(-1).latency?.p99} p999=${lean.at(-1).latency?.p999}`)
      }
      return [
        figure({ name: 'p50', unit: 'ms', tier: lat(r.tier, 'p50'), baseline: lat(r.direct, 'p50'), compareBy: 'added', goal: { on: 'compared', op: '<=', value: 0.3 }, digits: 3 }),
        figure({ name: 'p99', unit: 'ms', tier: lat(r.tier, 'p99'), baseline: lat(r.direct, 'p99'), compareBy: 'added', goal: { on: 'compared', op: '<=', value: 1 }, digits: 3 }),
        figure({ name: 'p99.9', unit: 'ms', tier: lat(r.tier, 'p999'), baseline: lat(r.direct, 'p999'), compareBy: 'added', digits: 3 }),
        figure({ name: 'p99, the first 5 s (1–6 s after the clients connect)', unit: 'ms', tier: lat(r.tier, 'p99', 'latencyEarly'), baseline: lat(r.direct, 'p99', 'latencyEarly'), compareBy: 'added', digits: 3 }),
        figure({ name: 'p99.9, the first 5 s', unit: 'ms', tier: lat(r.tier, 'p999', 'latencyEarly'), baseline: lat(r.direct, 'p999', 'latencyEarly'), compareBy: 'added', digits: 3 }),
        figure({ name: 'p99, resendWindowMs 0 + dedup.windowMs 0 (what-if)', unit: 'ms', tier: lat(lean, 'p99'), digits: 3 }),
        figure({ name: 'p99.9, the same what-if', unit: 'ms', tier: lat(lean, 'p999'), digits: 3 })
      ]
    }
  },
  'relay-floor': {
    title: 'what any relay adds on this machine: QoS 1 throughput and latency @2,000 msg/s (after 10 s at that rate) through a byte pipe (node, haproxy) and through the tier, each against direct',
    async run ({ runs, log }) {
      // The tier's ratios include what a second process between client and broker costs on a
      // shared machine (two more loopback hops, a process to schedule): a relay that parses
      // nothing shows that part alone.
      const relays = [['relay-node', 'node byte pipe'], ['relay-haproxy', 'haproxy (TCP mode)'], ['tier', 'the tier']]
      const modes = ['direct', ...relays.map(([mode]) => mode)]
      const out = Object.fromEntries(modes.map((mode) => [mode, []]))
      for (let i = 0; i < runs; i++) {
        for (const mode of [...modes.slice(i % modes.length), ...modes.slice(0, i % modes.length)]) {
          const flow = await runFlow(mode, { qos: 1, measureMs: settings.quick ? 2000 : 3000 })
          const timed = await runFlow(mode, { qos: 1, rate: 2000, measureMs: settings.quick ? 3000 : 5000, warmMs: settings.quick ? 4000 : 10_000, latency: true })
          out[mode].push({ msgsPerSec: flow.msgsPerSec, lost: flow.lost, cpuUsPerMsg: flow.tierCpuUsPerMsg, p99: timed.latency?.p99 ?? NaN })
          settings.raw.push({ mode, run: i + 1, ...out[mode].at(-1) })
          log(`  run ${i + 1}/${runs} ${mode}: ${brief(out[mode].at(-1))}`)
        }
      }
      const direct = out.direct
      return relays.flatMap(([mode, name]) => [
        figure({ name: `QoS 1 msgs/s, ${name} (tier column)`, tier: pick(out[mode], 'msgsPerSec'), baseline: pick(direct, 'msgsPerSec'), compareBy: 'ratio' }),
        figure({ name: `acked messages lost, ${name}`, tier: pick(out[mode], 'lost'), baseline: pick(direct, 'lost'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 }),
        figure({ name: `CPU per message of ${name}`, unit: 'µs', tier: pick(out[mode], 'cpuUsPerMsg'), digits: 1 }),
        figure({ name: `latency p99 @2,000 msg/s, ${name}`, unit: 'ms', tier: pick(out[mode], 'p99'), baseline: pick(direct, 'p99'), compareBy: 'added', digits: 3 })
      ])
    }
  },
  'failover-kill': {
    title: 'failover, Broker1 SIGKILL @500 msg/s',
    async run ({ runs, log }) {
      const r = await alternate(runs, (mode) => runFailover(mode, { signal: 'SIGKILL' }), log)
      return [
        figure({ name: 'gap last B1 → first B2 arrival', unit: 'ms', tier: pick(r.tier, 'gapMs'), baseline: pick(r.direct, 'gapMs'), goal: { on: 'tier', op: '<=', value: 50 } }),
        figure({ name: 'acked messages lost', tier: pick(r.tier, 'lost'), baseline: pick(r.direct, 'lost'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 })
      ]
    }
  },
  'failover-stop': {
    title: 'failover, Broker1 SIGSTOP @500 msg/s',
    async run ({ runs, log }) {
      const r = await alternate(runs, (mode) => runFailover(mode, { signal: 'SIGSTOP' }), log)
      return [
        figure({ name: 'detection (SIGSTOP → broker down)', unit: 'ms', tier: pick(r.tier, 'detectMs'), baseline: pick(r.direct, 'detectMs'), goal: { on: 'tier', op: '<=', value: 2500 } }),
        figure({ name: 'gap last B1 → first B2 arrival', unit: 'ms', tier: pick(r.tier, 'gapMs'), baseline: pick(r.direct, 'gapMs') }),
        figure({ name: 'acked messages lost', tier: pick(r.tier, 'lost'), baseline: pick(r.direct, 'lost'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 })
      ]
    }
  },
  failback: {
    title: 'failback (B1 killed 3 s, restarted)',
    async run ({ runs, log }) {
      const rows = []
      for (let i = 0; i < runs; i++) {
        const started = Date.now()
        rows.push(await runFailback())
        settings.raw.push({ mode: 'tier', run: i + 1, ...rows.at(-1) })
        log(`  run ${i + 1}/${runs} tier: ${brief(rows.at(-1))} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
      }
      return [
        figure({ name: 'publish stall (window full)', unit: 'ms', tier: pick(rows, 'stallMs'), goal: { on: 'tier', op: '=', value: 0 } }),
        figure({ name: 'order violations at Broker1', tier: pick(rows, 'orderViolations'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 }),
        figure({ name: 'acked messages missing at Broker1', tier: pick(rows, 'missingAtBroker1'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 }),
        figure({ name: 'left in the store after failback (GET /health)', tier: pick(rows, 'pendingAfter'), digits: 0 }),
        figure({ name: 'max PUBACK latency after restart', unit: 'ms', tier: pick(rows, 'maxAckLatencyMs') }),
        figure({ name: 'restart → failback', unit: 'ms', tier: pick(rows, 'restartToFailbackMs') })
      ]
    }
  },
  ingest: {
    title: 'store ingest (B1 down, policy queue)',
    async run ({ runs, log }) {
      const measureMs = settings.quick ? 2000 : 3000
      const r = await alternate(runs, (mode) => runIngest(mode, { measureMs }), log)
      const never = []
      for (let i = 0; i < 1; i++) {
        never.push(await runIngest('tier', { measureMs, fsync: 'never' }))
        settings.raw.push({ mode: 'tier, fsync never', run: i + 1, ...never.at(-1) })
        log(`  what-if run ${i + 1} tier, fsync never: ${brief(never.at(-1))}`)
      }
      return [
        figure({ name: 'acked msgs/s, fsync batch', tier: pick(r.tier, 'ingest'), baseline: pick(r.direct, 'ingest'), compareBy: 'ratio', goal: { on: 'tier', op: '>=', value: 20_000 } }),
        figure({ name: 'acked msgs/s, fsync never (what-if)', tier: pick(never, 'ingest') })
      ]
    }
  },
  replay: {
    title: 'replay of a 100k backlog',
    async run ({ runs, log }) {
      const count = settings.quick ? 30_000 : 100_000
      const r = await alternate(runs, (mode) => runReplay(mode, { count }), log)
      return [
        figure({ name: 'replay msgs/s to mosquitto', tier: pick(r.tier, 'replay'), baseline: pick(r.direct, 'replay'), compareBy: 'ratio', goal: { on: 'tier', op: '>=', value: 15_000 } }),
        figure({ name: 'order violations at Broker1', tier: pick(r.tier, 'orderViolations'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 }),
        figure({ name: 'peak RSS of the tier (100k replay)', unit: 'MB', tier: pick(r.tier, 'peakRssMb') })
      ]
    }
  },
  'replay-1m': {
    title: 'replay of a 1M backlog',
    async run ({ log }) {
      const count = settings.quick ? 200_000 : 1_000_000
      const started = Date.now()
      const r = await runReplay('tier', { count, label: 'replay-1m' })
      settings.raw.push({ mode: 'tier', run: 1, ...r })
      log(`  run 1/1 tier: ${brief(r)} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
      return [
        figure({ name: `peak RSS of the tier (${count / 1e6}M replay)`, unit: 'MB', tier: [r.peakRssMb], goal: { on: 'tier', op: '<', value: 250 } }),
        figure({ name: 'VmHWM of the tier', unit: 'MB', tier: [r.hwmMb] }),
        figure({ name: 'replay msgs/s', tier: [r.replay] }),
        figure({ name: 'messages replayed', tier: [r.replayed], goal: { on: 'tier', op: '>=', value: count }, digits: 0 })
      ]
    }
  },
  nodes: {
    title: 'idle terminals: 2 nodes behind haproxy vs 1 node',
    async run ({ runs, log }) {
      const n = settings.quick ? 2000 : 5000
      const settleMs = settings.quick ? 0 : 25_000
      const r = await alternate(runs, (mode) => runNodes(mode, { n, settleMs }), log)
      return [
        figure({ name: `time for ${n.toLocaleString('en')} to connect (tier: 2 nodes + haproxy; baseline: 1 node)`, unit: 'ms', tier: pick(r.tier, 'connectMs'), baseline: pick(r.direct, 'connectMs'), compareBy: 'ratio' }),
        ...(settleMs === 0 ? [] : [figure({ name: `RSS per idle terminal @${n / 1000}k, nodes summed, settled`, unit: 'KB', tier: pick(r.tier, 'kbPerTerminalSettled'), baseline: pick(r.direct, 'kbPerTerminalSettled'), goal: { on: 'tier', op: '<=', value: 40 } })]),
        figure({ name: `RSS growth per terminal 2 s after the burst, nodes summed`, unit: 'KB', tier: pick(r.tier, 'kbPerTerminal'), baseline: pick(r.direct, 'kbPerTerminal') }),
        figure({ name: 'haproxy RSS per terminal', unit: 'KB', tier: pick(r.tier, 'haproxyKbPerTerminal') }),
        figure({ name: 'share of the terminals on the emptier node', tier: pick(r.tier, 'minShare'), digits: 2 }),
        figure({ name: `terminals connected @${n / 1000}k`, tier: pick(r.tier, 'alive'), baseline: pick(r.direct, 'alive'), goal: { on: 'tier', op: '>=', value: n }, digits: 0 })
      ]
    }
  },
  'node-loss': {
    title: 'a node SIGKILLed under 50 persistent terminals at 1,000 msg/s (2 nodes behind haproxy)',
    async run ({ runs, log }) {
      const rows = []
      for (let i = 0; i < runs; i++) {
        const started = Date.now()
        rows.push(await runNodeLoss({ n: 50, rate: 1000 }))
        settings.raw.push({ mode: 'tier', run: i + 1, ...rows.at(-1) })
        log(`  run ${i + 1}/${runs} tier: ${brief(rows.at(-1))} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
      }
      return [
        figure({ name: 'kill → every terminal back (CONNACK)', unit: 'ms', tier: pick(rows, 'allBackMs'), goal: { on: 'tier', op: '<=', value: 3000 } }),
        figure({ name: 'terminals that lost their node', tier: pick(rows, 'moved'), digits: 0 }),
        figure({ name: 'back with session present', tier: pick(rows, 'sessionsPresent'), digits: 0 }),
        figure({ name: 'false wills (published for terminals that came back)', tier: pick(rows, 'falseWills'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 }),
        figure({ name: 'acked messages missing at Broker1', tier: pick(rows, 'missingAtBroker1'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 }),
        figure({ name: 'acked messages missing at their subscriber', tier: pick(rows, 'missingAtTerminals'), goal: { on: 'tier', op: '=', value: 0 }, digits: 0 }),
        figure({ name: 'messages acked', tier: pick(rows, 'acked'), digits: 0 })
      ]
    }
  },
  'session-loss': {
    title: 'Broker1 SIGKILLed and back empty (persistence false) under 1,000 persistent terminals',
    async run ({ runs, log }) {
      const n = settings.quick ? 300 : 1000
      const rows = { known: [], unknown: [] }
      for (let i = 0; i < runs; i++) {
        for (const kind of ['known', 'unknown']) {
          const started = Date.now()
          const row = await withScope((scope) => runSessionLoss(scope, { n, known: kind === 'known' }))
          rows[kind].push(row)
          settings.raw.push({ mode: 'tier', run: i + 1, ...row })
          log(`  run ${i + 1}/${runs} tier, subscribed in ${kind === 'known' ? 'this' : 'an earlier'} connection: ${brief(row)} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
        }
      }
      return ['known', 'unknown'].flatMap((kind) => {
        const label = kind === 'known' ? 'subscribed in this connection (restored)' : 'subscribed earlier (asked to reconnect)'
        return [
          figure({ name: `${label}: restart → every session whole`, unit: 'ms', tier: pick(rows[kind], 'restartToWholeMs') }),
          figure({ name: `${label}: restart → failback`, unit: 'ms', tier: pick(rows[kind], 'restartToFailbackMs') }),
          figure({ name: `${label}: failback waited for sessions`, unit: 'ms', tier: pick(rows[kind], 'failbackWaitedForSessionsMs') }),
          figure({ name: `${label}: terminals asked to reconnect`, tier: pick(rows[kind], 'asked'), digits: 0 }),
          figure({ name: `${label}: delivered after failback (of ${n.toLocaleString('en')})`, tier: pick(rows[kind], 'deliveredAfterFailback'), goal: { on: 'tier', op: '>=', value: n }, digits: 0 })
        ]
      })
    }
  },
  terminals: {
    title: 'idle terminals',
    async run ({ runs, log }) {
      // Settled: 25 s of quiet before the burst and after it (the tier; mosquitto's RSS does not move).
      const settleMs = settings.quick ? 0 : 25_000
      const small = await alternate(runs, (mode) => runTerminals(mode, { n: 1000, settleMs }), log)
      const big = await alternate(1, (mode) => runTerminals(mode, { n: 5000, settleMs }), log)
      return [
        // --quick does not wait to settle: no settled rows then
        ...(settleMs === 0 ? [] : [
          figure({ name: 'RSS per idle terminal @1k, settled (tier: both upstream sessions incl.)', unit: 'KB', tier: pick(small.tier, 'kbPerTerminalSettled'), baseline: pick(small.direct, 'kbPerTerminalSettled'), goal: { on: 'tier', op: '<=', value: 40 } }),
          figure({ name: 'RSS per idle terminal @5k, settled', unit: 'KB', tier: pick(big.tier, 'kbPerTerminalSettled'), baseline: pick(big.direct, 'kbPerTerminalSettled'), goal: { on: 'tier', op: '<=', value: 40 } })
        ]),
        figure({ name: 'RSS growth per terminal 2 s after a burst of 1k', unit: 'KB', tier: pick(small.tier, 'kbPerTerminal'), baseline: pick(small.direct, 'kbPerTerminal') }),
        figure({ name: 'RSS growth per terminal 2 s after a burst of 5k', unit: 'KB', tier: pick(big.tier, 'kbPerTerminal'), baseline: pick(big.direct, 'kbPerTerminal') }),
        figure({ name: 'time for 1,000 to connect', unit: 'ms', tier: pick(small.tier, 'connectMs'), baseline: pick(small.direct, 'connectMs'), compareBy: 'ratio', goal: { on: 'tier', op: '<=', value: 2000 } }),
        figure({ name: 'time for 5,000 to connect', unit: 'ms', tier: pick(big.tier, 'connectMs'), baseline: pick(big.direct, 'connectMs'), compareBy: 'ratio' }),
        figure({ name: 'terminals connected @5k', tier: pick(big.tier, 'alive'), baseline: pick(big.direct, 'alive'), goal: { on: 'tier', op: '>=', value: 5000 }, digits: 0 })
      ]
    }
  }
}
