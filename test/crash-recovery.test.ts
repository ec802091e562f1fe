import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startCli, type RunningCli } from './support/cli-process.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { random as prng } from './support/fuzz.js'
import { startMosquitto, type MosquittoBroker } from './support/mosquitto.js'
import { record, type Recorder } from './support/recorder.js'
import { duplicates, missing, orderViolations } from './support/sequence.js'
import { publishStream } from './support/stream.js'

/**
 * README "The pending store": an entry leaves the pending store only after Broker1 acked it, so a
 * tier SIGKILLed at any point loses nothing it acknowledged to a terminal, and
 * replays in order once restarted on the same data dir (at least once).
 */
const CONFIG = [
  'logLevel: info',
  'health:',
  '  keepaliveSeconds: 1',
  '  connectTimeoutMs: 2000',
  '  ackTimeoutMs: 5000',
  '  failbackDelayMs: 1000', // long enough to attach a recorder at a restarted Broker1
  '  reconnectPeriodMs: 100',
  'replay:',
  '  window: 100',
  ''
].join('\n')

/** Every step waits on an event; this bounds the whole case all the same. */
const BOUNDED = { timeout: 60_000 }

interface Setup { b1: MosquittoBroker, start: () => Promise<RunningCli & { url: string }> }

/** Two brokers, and a tier (the CLI) that each `start()` runs on the same data dir. */
async function setup (t: Test): Promise<Setup> {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const dir = tempDir(t, 'crash-')
  const config = join(dir, 'tier.yaml')
  writeFileSync(config, CONFIG)
  const args = ['--config', config, '--host', '127.0.0.1', '--port', '0', '--broker1', b1.url, '--broker2', b2.url,
    '--data', join(dir, 'data'), '--policy', 'q/#=queue']
  return { b1, start: () => startCli(t, args) }
}

/** Kills Broker1 and resolves once the tier logged its failover. */
async function failOver (b1: MosquittoBroker, tier: RunningCli): Promise<void> {
  await b1.kill('SIGKILL')
  await tier.waitForLog('failover')
}

/** Publishes `count` QoS 1 messages; the tier is SIGKILLed once `killAt` were acked. Resolves with the acked seqs. */
async function publishAndKill (t: Test, tier: RunningCli & { url: string }, topic: string, count: number, killAt: number): Promise<number[]> {
  const terminal = await connectClient(t, tier.url, { clientId: `crash-${topic.replace('/', '-')}` })
  let killing: Promise<void> | undefined
  const stream = publishStream(terminal, {
    topic,
    count,
    window: 100,
    onAck: (acked) => {
      if (acked >= killAt && killing === undefined) killing = tier.kill('SIGKILL')
    }
  })
  const result = await Promise.race([stream, tier.exited.then(async () => {
    // mqtt.js fails the callbacks of what is still unacked once the client is ended.
    terminal.end(true)
    return await stream
  })])
  await killing
  return result.acked
}

/** Recorders at Broker1 of the `q/` messages, and of the marker alone (cheap to wait for). */
async function recordAtBroker1 (t: Test, b1: MosquittoBroker): Promise<{ all: Recorder, marker: Recorder }> {
  return { all: await record(t, b1.url, 'q/#'), marker: await record(t, b1.url, 'q/marker') }
}

/**
 * Publishes a marker through the restarted tier and resolves with the time it reached Broker1.
 * While the backlog replays, the marker goes into the store behind it (README "Guarantees", ordering
 * invariant), so it comes last. (A replay at start ends with no `failback` log line to wait for.)
 * Then waits until the big recorder, which may lag, has it too.
 */
async function drained (t: Test, tier: RunningCli & { url: string }, at: { all: Recorder, marker: Recorder }, timeoutMs: number): Promise<number> {
  const terminal = await connectClient(t, tier.url, { clientId: 'crash-marker' })
  await terminal.publishAsync('q/marker', 'after restart', { qos: 1 })
  await at.marker.waitForTopic('q/marker', timeoutMs)
  const arrived = Date.now()
  // Not at.all.waitForTopic: it scans every recorded message on each arrival (quadratic on 20k).
  for (let seen = 0; ; seen++) {
    if (seen === at.all.messages.length) await at.all.waitFor(seen + 1, 10_000)
    if (at.all.messages[seen]!.topic === 'q/marker') return arrived
  }
}

t.test('SIGKILLed with a backlog, and again in the middle of a batch: every acked message reaches Broker1, in order', BOUNDED, async (t) => {
  const { b1, start } = await setup(t)
  const first = await start()
  await failOver(b1, first)
  const terminal = await connectClient(t, first.url, { clientId: 'crash-a' })
  const batchA = await publishStream(terminal, { topic: 'q/a', count: 2000, window: 100 })
  t.equal(batchA.acked.length, 2000, 'the whole first batch acknowledged while Broker1 is down')
  const ackedB = await publishAndKill(t, first, 'q/b', 2000, 1000)
  t.ok(ackedB.length >= 1000 && ackedB.length < 2000, `SIGKILLed in the middle of the second batch (${ackedB.length} acked)`)

  await b1.restart()
  const at = await recordAtBroker1(t, b1)
  const recorder = at.all
  const second = await start()
  const opened = await second.waitForLog('pending store opened')
  const stored = opened.count as number
  t.ok(stored >= 2000 + ackedB.length, `the store kept every acked message (${stored} entries)`)
  const replayMs = await drained(t, second, at, 20_000) - (opened.time as number)

  const [atA, atB] = [recorder.sequences('q/a'), recorder.sequences('q/b')]
  t.same(missing(batchA.acked, atA), [], 'every message of the first batch arrived')
  t.same(missing(ackedB, atB), [], 'every acked message of the interrupted batch arrived')
  t.equal(orderViolations(atA), 0, 'first batch in order')
  t.equal(orderViolations(atB), 0, 'second batch in order')
  const topics = recorder.messages.map((m) => m.topic)
  t.ok(topics.lastIndexOf('q/a') < topics.indexOf('q/b'), 'the whole first batch before the second')
  t.ok(topics.lastIndexOf('q/b') < topics.indexOf('q/marker'), 'a publish after the restart behind the whole backlog')
  t.comment(`replayed ${stored} stored messages after the restart in ${replayMs} ms (store opened → marker at Broker1,` +
    ` ${Math.round(stored / (replayMs / 1000))} msg/s); duplicates ${duplicates(atA) + duplicates(atB)}`)
})

t.test('SIGKILLed during the replay: after a restart nothing acked is missing and the order holds', BOUNDED, async (t) => {
  const COUNT = 20_000
  const { b1, start } = await setup(t)
  const first = await start()
  await failOver(b1, first)
  const terminal = await connectClient(t, first.url, { clientId: 'crash-replay' })
  const publishStarted = Date.now()
  const { acked } = await publishStream(terminal, { topic: 'q/a', count: COUNT, window: 200 })
  const publishMs = Date.now() - publishStarted
  t.equal(acked.length, COUNT, 'the whole backlog acknowledged while Broker1 is down')

  await b1.restart()
  const at = await recordAtBroker1(t, b1)
  const recorder = at.all
  await first.waitForLog('replay progress', () => true, 10_000)
  const replayStarted = Date.now()
  await recorder.waitFor(COUNT / 4, 20_000)
  await first.kill('SIGKILL')
  const firstReplayMs = Date.now() - replayStarted
  const beforeKill = recorder.messages.length
  t.ok(beforeKill < COUNT, `SIGKILLed during the replay (${beforeKill} of ${COUNT} had arrived)`)

  const second = await start()
  const opened = await second.waitForLog('pending store opened')
  const stored = opened.count as number
  t.ok(stored > 0 && stored < COUNT, `the store kept what was not acked yet, not the whole backlog (${stored} entries)`)
  const resumeMs = await drained(t, second, at, 30_000) - (opened.time as number)

  const got = recorder.sequences('q/a')
  t.same(missing(acked, got), [], 'every acked message arrived')
  t.equal(orderViolations(got), 0, 'in order')
  const topics = recorder.messages.map((m) => m.topic)
  t.ok(topics.lastIndexOf('q/a') < topics.indexOf('q/marker'), 'a publish after the restart behind the whole backlog')
  t.comment(`${COUNT} messages stored in ${publishMs} ms (${Math.round(COUNT / (publishMs / 1000))} msg/s);` +
    ` replay killed after ${beforeKill} had arrived (${firstReplayMs} ms after the first progress line);` +
    ` ${stored} left, replayed in ${resumeMs} ms (${Math.round(stored / (resumeMs / 1000))} msg/s); duplicates ${duplicates(got)}`)
})

// `npm run soak` kills the tier 10 times during one replay; `npm test` 3 times.
const REPLAY_KILLS = process.env.SOAK === '1' ? 10 : 3

t.test(`SIGKILLed ${REPLAY_KILLS} times at random moments of one replay: every acked message arrives, in order`, { timeout: 120_000 }, async (t) => {
  const COUNT = 20_000
  const random = prng(Number(process.env.FUZZ_SEED ?? 7))
  const { b1, start } = await setup(t)
  const first = await start()
  await failOver(b1, first)
  const terminal = await connectClient(t, first.url, { clientId: 'crash-often' })
  const { acked } = await publishStream(terminal, { topic: 'q/a', count: COUNT, window: 200 })
  await first.kill('SIGKILL')
  await b1.restart()
  const at = await recordAtBroker1(t, b1)
  for (let kill = 0; kill < REPLAY_KILLS; kill++) {
    const tier = await start()
    await tier.waitForLog('replay start', () => true, 10_000)
    // A random share of what is left arrives before the kill: early, late, or mid-window.
    const target = at.all.messages.length + 1 + Math.floor(random() * (COUNT - at.all.messages.length) / REPLAY_KILLS)
    await at.all.waitFor(target, 20_000)
    await tier.kill('SIGKILL')
  }
  const last = await start()
  await drained(t, last, at, 30_000)
  const got = at.all.sequences('q/a')
  t.same(missing(acked, got), [], `every acked message arrived after ${REPLAY_KILLS} kills`)
  t.equal(orderViolations(got), 0, 'in order')
  t.comment(`duplicates after ${REPLAY_KILLS} kills during one replay of ${COUNT}: ${duplicates(got)}`)
})

