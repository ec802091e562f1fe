import t from 'tap'
import { readdirSync } from 'node:fs'
import type { MqttClient } from 'mqtt'
import { connectClient } from './support/client.js'
import { nextEvent, startDurableTier } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record, type Recorder } from './support/recorder.js'
import { missing, orderViolations, parseSeq } from './support/sequence.js'
import { publishStream } from './support/stream.js'

// `npm run soak` runs the full version (SOAK=1); `npm test` a short one with the same checks.
const SOAK = process.env.SOAK === '1'
const KILLS = SOAK ? 20 : 4
const TERMINALS = SOAK ? 50 : 10
const RATE_PER_TERMINAL = 20

const openFds = (): number => readdirSync('/proc/self/fd').length

t.test(`Broker1 killed and restarted ${KILLS} times under a QoS 1 stream from ${TERMINALS} terminals (policy both)`, async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const recorders: Recorder[] = [await record(t, b1.url, 'chaos/#')]
  const { url, tier } = await startDurableTier(t, b1.url, b2.url)
  const fdsBefore = openFds()
  const terminals: MqttClient[] = []
  for (let i = 0; i < TERMINALS; i++) terminals.push(await connectClient(t, url, { clientId: `chaos-${i}` }))
  let running = true
  const streams = terminals.map((terminal, i) => publishStream(terminal, {
    topic: `chaos/${i}`, count: 1_000_000, window: 20, rate: RATE_PER_TERMINAL, stop: () => !running
  }))

  for (let kill = 0; kill < KILLS; kill++) {
    const failover = nextEvent(tier, 'failover')
    await b1.kill('SIGKILL')
    await failover
    const failback = nextEvent(tier, 'failback')
    await b1.restart()
    recorders.push(await record(t, b1.url, 'chaos/#'))
    await failback
  }
  running = false
  const results = await Promise.all(streams)
  await terminals[0]!.publishAsync('chaos/control', 'c', { qos: 1 })
  await recorders.at(-1)!.waitForTopic('chaos/control', 20_000)

  let lost = 0
  let violations = 0
  results.forEach(({ acked }, i) => {
    const got = recorders.flatMap((r) => r.messages.filter((m) => m.topic === `chaos/${i}`).map((m) => parseSeq(m.payload)!))
    lost += missing(acked, got).length
    violations += orderViolations(got)
  })
  const sent = results.reduce((sum, { acked }) => sum + acked.length, 0)
  t.ok(sent > TERMINALS * 10, `${sent} messages acked`)
  t.equal(lost, 0, '0 acked messages lost at Broker1')
  t.equal(violations, 0, '0 order violations per publisher')
  t.equal(tier.state.pending.messages, 0, 'the store drained')

  await Promise.all(terminals.map((terminal) => terminal.endAsync()))
  await t.resolves(waitUntil(() => tier.state.clients === 0), 'every terminal session ended')
  // Upstream connections close once their broker closed its side, a round trip after the sessions end.
  await waitUntil(() => openFds() <= fdsBefore + 5).catch(() => {})
  t.ok(openFds() <= fdsBefore + 5, `file descriptors back to baseline (${fdsBefore} before, ${openFds()} after)`)
})

/** Polls a condition that no event announces (sessions ending), bounded. */
async function waitUntil (condition: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
