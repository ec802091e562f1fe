/** CONNECT and CONNACK as a terminal observes them, straight at Broker1 and through the tier. */
import t from 'tap'
import { rawConnect } from '../support/raw-terminal.js'
import { BROKER_KINDS, differential } from '../support/differential.js'
import { startTier } from '../support/tier.js'

for (const kind of BROKER_KINDS) {
  t.test(`${kind}: client ids and keepalives at the edges get the broker's own answer`, async (t) => {
    // The broker's own answer, past the cap the tier puts on client ids by default (checked below).
    const { broker1, broker2, targets } = await differential(t, kind, { plugin: { limits: { maxClientIdLength: 0 } } })
    const cases: Array<[string, { clientId: string, clean: boolean, keepalive?: number }]> = [
      ['[MQTT-3.1.3-8] zero-length id, clean: false', { clientId: '', clean: false }],
      ['[MQTT-3.1.3-7] zero-length id, clean: true', { clientId: '', clean: true }],
      ['[MQTT-3.1.3-5] an id with wildcard characters', { clientId: 'dev/+/#', clean: true }],
      ['an id of one space', { clientId: ' ', clean: true }],
      ['an id of 65,000 characters', { clientId: 'x'.repeat(65_000), clean: true }],
      ['[MQTT-3.1.2-22] keepalive 0', { clientId: 'keepalive-0', clean: true, keepalive: 0 }]
    ]
    for (const [name, options] of cases) {
      const seen: Record<string, unknown> = {}
      for (const [way, url] of targets) {
        const clientId = options.clientId.length > 1 ? `${way}-${options.clientId}` : options.clientId
        const terminal = await rawConnect(t, url, { ...options, clientId })
        const refused = terminal.connack.returnCode !== 0
        if (refused) await terminal.closed // [MQTT-3.2.2-5] a refusal closes the connection
        seen[way] = { returnCode: terminal.connack.returnCode, sessionPresent: terminal.connack.sessionPresent, closed: refused }
        if (!refused) await terminal.disconnect()
      }
      if (kind === 'aedes' && options.clientId === '' && !options.clean) {
        // A deliberate difference (README "What a terminal observes"): Aedes 1.2 accepts this CONNECT.
        t.same(seen.tier, { returnCode: 2, sessionPresent: false, closed: true }, `${name}: refused by the tier (Aedes straight: ${JSON.stringify(seen.direct)})`)
        continue
      }
      t.same(seen.tier, seen.direct, `${name}: ${JSON.stringify(seen.direct)}`)
    }
    // A deliberate difference (README "What a terminal observes"): limits.maxClientIdLength, 256 bytes by default.
    const capped = await startTier(t, broker1.url, broker2.url)
    const long = await rawConnect(t, capped.url, { clientId: 'x'.repeat(257), clean: true })
    await long.closed
    t.equal(long.connack.returnCode, 2, 'an id past limits.maxClientIdLength: return code 2 from the tier, whatever Broker1 would say')
    if (broker1.aedes !== undefined) {
      const before = broker1.aedes.connectsTotal()
      const terminal = await rawConnect(t, targets[1]![1], { clientId: '', clean: false })
      await terminal.closed
      t.equal(broker1.aedes.connectsTotal(), before, 'a refused zero-length id opens no session upstream')
    }
  })
}
