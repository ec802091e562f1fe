/**
 * Persistent terminals through the tier observe what they observe straight at
 * the broker (README "What a persistent terminal can rely on"): each scenario
 * runs once against the broker directly and once through the tier in front
 * of it, on mosquitto and on Aedes (the upstream in MQTT 5 and in 3.1.1), and the
 * observations are compared.
 */
import t from 'tap'
import type { IPublishPacket } from 'mqtt-packet'
import { startBroker } from '../support/broker-pair.js'
import { rawConnect } from '../support/raw-terminal.js'
import { startTier } from '../support/tier.js'
import { ACK_TIMEOUT_MS, brokerOf, differential, publishes, range, subscribe, UPSTREAMS, upstreamOptions } from '../support/differential.js'

/** A CONNACK or SUBACK sooner than this did not wait for an ack timeout (ACK_TIMEOUT_MS); speed is the bench's job. */
const PROMPT_MS = ACK_TIMEOUT_MS / 4

for (const kind of UPSTREAMS) {
  t.test(`${kind}: a persistent terminal reconnecting to 20 queued QoS 1 messages`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const id = `queued-${kind}-${way}`
      const first = await rawConnect(t, url, { clientId: id, clean: false })
      await subscribe(first, `${id}/#`, 1)
      await first.disconnect()
      await broker1.publish(`${id}/m`, range(0, 20), 1)

      const again = await rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })
      t.ok(again.connackMs < PROMPT_MS, `${way}: CONNACK after ${Math.round(again.connackMs)} ms, not after an ack timeout`)
      await again.next((p) => p.cmd === 'publish' && p.payload.toString() === '19')
      // A marker behind them: anything held back would arrive before it [MQTT-4.6.0-2].
      await broker1.publish(`${id}/m`, ['marker'], 1)
      await again.next((p) => p.cmd === 'publish' && p.payload.toString() === 'marker')
      await again.disconnect()
      const third = await rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })
      await broker1.publish(`${id}/m`, ['after'], 1)
      await third.next((p) => p.cmd === 'publish')
      seen[way] = {
        firstPacket: again.packets[0]?.cmd, // [MQTT-3.2.0-1]
        sessionPresent: again.connack.sessionPresent, // [MQTT-3.2.2-2]
        delivered: publishes(again.packets).map((p) => [p.payload.toString(), p.qos, p.dup, p.retain]),
        // Aedes as Broker1 may deliver a message published during a reconnect twice (QoS 1 allows it).
        heldBack: [...new Set(publishes(third.packets).map((p) => p.payload.toString()))]
      }
      await third.disconnect()
    }
    t.same(seen.tier, seen.direct, 'through the tier as straight at the broker')
    t.match(seen.direct, { firstPacket: 'connack', sessionPresent: true, heldBack: ['after'] })
    t.same((seen.direct as { delivered: unknown[] }).delivered.length, 21, 'all 20, in order, then the marker')
  })

  t.test(`${kind}: what a persistent terminal did not ack comes again after its reconnect, with DUP`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const id = `unacked-${kind}-${way}`
      const first = await rawConnect(t, url, { clientId: id, clean: false })
      await subscribe(first, `${id}/#`, 1)
      await broker1.publish(`${id}/m`, range(0, 10), 1)
      await first.next((p) => p.cmd === 'publish' && p.payload.toString() === '9')
      const firstRound = publishes(first.packets)
      // Only the first five acked; the connection drops mid-flow.
      for (const p of firstRound.slice(0, 5)) first.send({ cmd: 'puback', messageId: p.messageId! })
      first.send({ cmd: 'pingreq' }) // answered once the acks before it were read
      await first.next((p) => p.cmd === 'pingresp')
      await first.drop()
      const again = await rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })
      await again.next((p) => p.cmd === 'publish' && p.payload.toString() === '9')
      seen[way] = {
        sessionPresent: again.connack.sessionPresent,
        firstRound: firstRound.map((p) => [p.payload.toString(), p.dup]),
        // [MQTT-4.4.0-1] resent with their packet identifiers; [MQTT-3.3.1-1] DUP set
        redelivered: publishes(again.packets).map((p) => [p.payload.toString(), p.dup, firstRound.find((f) => f.payload.toString() === p.payload.toString())?.messageId === p.messageId])
      }
      await again.disconnect()
    }
    t.same(seen.tier, seen.direct, 'through the tier as straight at the broker')
    t.match(seen.direct, { sessionPresent: true })
    t.same((seen.direct as { redelivered: unknown[] }).redelivered.map((r) => (r as string[])[0]), range(5, 10), 'the five unacked, in order')
  })

  t.test(`${kind}: a QoS 2 delivery whose PUBREL was due when the terminal dropped is completed on its reconnect`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const id = `qos2-${kind}-${way}`
      const first = await rawConnect(t, url, { clientId: id, clean: false })
      await subscribe(first, `${id}/#`, 2)
      await broker1.publish(`${id}/m`, ['once'], 2)
      const delivered = await first.next<IPublishPacket>((p) => p.cmd === 'publish')
      first.send({ cmd: 'pubrec', messageId: delivered.messageId! })
      await first.next((p) => p.cmd === 'pubrel')
      await first.drop() // PUBCOMP never sent
      const again = await rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })
      await broker1.publish(`${id}/m`, ['next'], 2)
      const next = await again.next<IPublishPacket>((p) => p.cmd === 'publish' && p.payload.toString() === 'next')
      seen[way] = {
        sessionPresent: again.connack.sessionPresent,
        // [MQTT-4.4.0-1] the PUBREL again, under the identifier the terminal knows; the message itself not again.
        // Compared up to the next message: what follows it (its own PUBREL) comes a round trip later, sooner straight at the broker.
        packets: again.packets.slice(0, again.packets.indexOf(next) + 1).filter((p) => p.cmd === 'pubrel' || p.cmd === 'publish').map((p) =>
          p.cmd === 'pubrel' ? ['pubrel', p.messageId === delivered.messageId] : ['publish', (p as IPublishPacket).payload.toString(), (p as IPublishPacket).dup])
      }
      await again.disconnect()
    }
    t.same(seen.tier, seen.direct, 'through the tier as straight at the broker')
  })

  t.test(`${kind}: session present on a persistent reconnect with no subscription`, async (t) => {
    const { targets } = await differential(t, kind)
    const seen: Record<string, boolean[]> = {}
    for (const [way, url] of targets) {
      const id = `present-${kind}-${way}`
      const present: boolean[] = []
      for (const clean of [true, false, false, true, false]) {
        const terminal = await rawConnect(t, url, { clientId: id, clean })
        present.push(terminal.connack.sessionPresent)
        await terminal.disconnect()
      }
      seen[way] = present
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
  })

  // Aedes itself rewrites a persistent client's subscription list once per filter: 5,000 take it 13 s.
  const filterCount = brokerOf(kind) === 'mosquitto' ? 5000 : 500
  t.test(`${kind}: one SUBSCRIBE of ${filterCount} filters from a persistent terminal`, async (t) => {
    // The cost of the filters themselves, past the caps a hostile terminal meets by default (limits.*).
    const { broker1, targets } = await differential(t, kind, { plugin: { limits: { maxFiltersPerSubscribe: 0, maxSubscriptionsPerTerminal: 0 } } })
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const id = `filters-${kind}-${way}`
      const bystander = await rawConnect(t, url, { clientId: `${id}-bystander`, clean: false }, { autoAck: true })
      await subscribe(bystander, `${id}-bystander/#`, 1)
      const terminal = await rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })
      const subscriptions = Array.from({ length: filterCount }, (_, i) => ({ topic: `${id}/f/${i}`, qos: 1 as const }))
      const startedAt = performance.now()
      terminal.send({ cmd: 'subscribe', messageId: 7, subscriptions })
      await broker1.publish(`${id}-bystander/m`, ['meanwhile'], 1)
      await bystander.next((p) => p.cmd === 'publish')
      const suback = await terminal.next((p) => p.cmd === 'suback', 10_000)
      const subackMs = performance.now() - startedAt
      t.ok(subackMs < PROMPT_MS, `${way}: SUBACK after ${Math.round(subackMs)} ms`)
      await broker1.publish(`${id}/f/${filterCount - 1}`, ['last filter'], 1)
      await terminal.next((p) => p.cmd === 'publish')
      seen[way] = { granted: (suback as { granted: number[] }).granted.length, messageId: suback.messageId }
      await terminal.disconnect()
      await bystander.disconnect()
    }
    t.same(seen.tier, seen.direct, 'through the tier as straight at the broker')
  })

  t.test(`${kind}: 300 persistent terminals reconnect at once to 10 queued QoS 1 messages each`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const ids = Array.from({ length: 300 }, (_, i) => `storm-${kind}-${way}-${i}`)
      for (const id of ids) {
        const terminal = await rawConnect(t, url, { clientId: id, clean: false })
        await subscribe(terminal, `${id}/#`, 1)
        await terminal.disconnect()
      }
      await Promise.all(ids.map((id) => broker1.publish(`${id}/m`, range(0, 10), 1)))
      const terminals = await Promise.all(ids.map((id) => rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })))
      await Promise.all(terminals.map((terminal) => terminal.next((p) => p.cmd === 'publish' && p.payload.toString() === '9', 15_000)))
      seen[way] = {
        sessionPresent: terminals.filter((terminal) => terminal.connack.sessionPresent).length,
        inOrder: terminals.filter((terminal) => publishes(terminal.packets).map((p) => p.payload.toString()).join() === range(0, 10).join()).length
      }
      await Promise.all(terminals.map((terminal) => terminal.disconnect()))
    }
    t.same(seen.tier, seen.direct, 'through the tier as straight at the broker')
    t.same(seen.direct, { sessionPresent: 300, inOrder: 300 })
  })
}

for (const kind of UPSTREAMS) {
  t.test(`${kind}: 5,000 QoS 1 messages published through the tier to a persistent subscriber on the tier`, async (t) => {
    const { targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const id = `stream-${kind}-${way}`
      const subscriber = await rawConnect(t, url, { clientId: `${id}-sub`, clean: false }, { autoAck: true })
      await subscribe(subscriber, `${id}/#`, 1)
      const publisher = await rawConnect(t, url, { clientId: `${id}-pub` })
      const count = 5000
      for (let i = 0; i < count; i++) publisher.send({ cmd: 'publish', topic: `${id}/m`, payload: Buffer.from(String(i)), qos: 1, messageId: (i % 65535) + 1, retain: false, dup: false })
      await subscriber.next((p) => p.cmd === 'publish' && p.payload.toString() === String(count - 1), 20_000)
      const got = publishes(subscriber.packets).map((p) => Number(p.payload.toString()))
      seen[way] = { received: new Set(got).size, inOrder: got.every((seq, i) => i === 0 || seq > got[i - 1]!) }
      await publisher.disconnect()
      await subscriber.disconnect()
    }
    t.same(seen.tier, seen.direct, 'through the tier as straight at the broker')
    t.same(seen.direct, { received: 5000, inOrder: true })
  })

  t.test(`${kind}: a persistent terminal that both brokers feed at once gets everything, and nothing more after a reconnect`, async (t) => {
    const broker1 = await startBroker(t, brokerOf(kind))
    const broker2 = await startBroker(t, brokerOf(kind))
    const tier = await startTier(t, broker1.url, broker2.url, upstreamOptions(kind, broker1.url, broker2.url))
    const id = `twin-${kind}`
    const terminal = await rawConnect(t, tier.url, { clientId: id, clean: false }, { autoAck: true })
    await subscribe(terminal, `${id}/#`, 1)
    // Distinct payloads per broker, so that no copy is taken for the other broker's.
    await Promise.all([broker1.publish(`${id}/one`, range(0, 300).map((i) => `b1-${i}`), 1), broker2.publish(`${id}/two`, range(0, 300).map((i) => `b2-${i}`), 1)])
    await terminal.next((p) => p.cmd === 'publish' && p.payload.toString() === 'b1-299', 10_000)
    await terminal.next((p) => p.cmd === 'publish' && p.payload.toString() === 'b2-299', 10_000)
    const got = publishes(terminal.packets).map((p) => p.payload.toString())
    t.equal(new Set(got).size, 600, 'all 600, from both brokers')
    for (const prefix of ['b1-', 'b2-']) {
      t.same(got.filter((p) => p.startsWith(prefix)), range(0, 300).map((i) => prefix + i), `${prefix}: in each broker's order`)
    }
    await terminal.disconnect()
    const again = await rawConnect(t, tier.url, { clientId: id, clean: false }, { autoAck: true })
    await broker1.publish(`${id}/one`, ['marker'], 1)
    await again.next((p) => p.cmd === 'publish' && p.payload.toString() === 'marker')
    t.same(publishes(again.packets).map((p) => p.payload.toString()), ['marker'], 'nothing was held back for the next connection')
  })
}
