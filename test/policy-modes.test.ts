import t from 'tap'
import type { PolicyMode } from '../src/index.js'
import { connectClient } from './support/client.js'
import { failBackAndRecord, nextEvent, startDurableTier } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { missing, orderViolations } from './support/sequence.js'
import { publishStream } from './support/stream.js'

const COUNT = 20

/** What each broker holds of the outage's messages in the end (README "Per-topic policy"). */
const expectations: Record<PolicyMode, { standbyUp: [boolean, boolean], standbyDown: [boolean, boolean] }> = {
  failover: { standbyUp: [false, true], standbyDown: [false, true] }, // stored, sent to the first broker back (Broker2 here)
  queue: { standbyUp: [true, false], standbyDown: [true, false] },
  both: { standbyUp: [true, true], standbyDown: [true, false] },
  drop: { standbyUp: [false, false], standbyDown: [false, false] }
}

for (const mode of ['failover', 'queue', 'both', 'drop'] as const) {
  for (const standby of ['up', 'down'] as const) {
    t.test(`policy ${mode} with Broker2 ${standby}`, async (t) => {
      const b1 = await startMosquitto(t)
      const b2 = await startMosquitto(t)
      const { url, tier } = await startDurableTier(t, b1.url, b2.url, { policies: [{ topic: 'out/#', mode }], defaultPolicy: 'queue' })
      const terminal = await connectClient(t, url, { clientId: `t-${mode}-${standby}` })
      let atBroker2 = await record(t, b2.url, 'out/#')

      const broker1Down = nextEvent(tier, 'failover')
      await b1.kill()
      await broker1Down
      if (standby === 'down') {
        const gone = nextEvent(tier, 'broker-down', ({ broker }) => broker === 'broker2')
        await b2.kill()
        await gone
      }
      let dropped = 0
      tier.on('dropped', ({ count }) => { dropped += count })
      const { acked } = await publishStream(terminal, { topic: 'out/a', count: COUNT, window: 5 })
      t.equal(acked.length, COUNT, 'every publish acknowledged')

      if (standby === 'down') {
        // Broker2 comes back first: `failover` messages go to the first broker back.
        const back = nextEvent(tier, 'broker-up', ({ broker }) => broker === 'broker2')
        await b2.restart()
        atBroker2 = await record(t, b2.url, 'out/#')
        await back
        if (mode === 'failover') await atBroker2.waitFor(COUNT)
      }
      const atBroker1 = await failBackAndRecord(t, tier, b1, terminal, 'out/#', 'out/control')

      const [want1, want2] = expectations[mode][standby === 'up' ? 'standbyUp' : 'standbyDown']
      const at1 = atBroker1.sequences('out/a')
      t.same(missing(acked, at1), want1 ? [] : acked, `Broker1 ${want1 ? 'got every' : 'got none of the'} outage message${want1 ? ', in order' : ''}`)
      if (want1) t.equal(orderViolations(at1), 0)
      const at2 = atBroker2.sequences('out/a')
      t.same(missing(acked, at2), want2 ? [] : acked, `Broker2 ${want2 ? 'got every' : 'got none of the'} outage message`)
      t.equal(dropped, mode === 'drop' ? COUNT : 0, 'drops counted')
      t.equal(tier.state.pending.messages, 0, 'nothing left pending')
    })
  }
}
