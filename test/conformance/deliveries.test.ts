/**
 * QoS 0/1/2 in both directions, SUBACK grants, UNSUBSCRIBE and per-topic
 * order, as a raw-socket terminal observes them straight at Broker1 and
 * through the tier in front of it.
 */
import t from 'tap'
import type { IPublishPacket, ISubackPacket, Packet } from 'mqtt-packet'
import { rawConnect } from '../support/raw-terminal.js'
import { brokerOf, differential, UPSTREAMS, publishes, range, subscribe } from '../support/differential.js'

type Qos = 0 | 1 | 2
const QOS: readonly Qos[] = [0, 1, 2]

const publishPacket = (topic: string, payload: string, qos: Qos, messageId: number, extra: Partial<IPublishPacket> = {}): IPublishPacket =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...(qos > 0 && { messageId }), ...extra })

/** The flags of a delivery: payload, QoS, DUP, retain, whether it carries a packet identifier. */
const flags = (p: IPublishPacket): [string, number, boolean, boolean, boolean] => [p.payload.toString(), p.qos, p.dup, p.retain, p.messageId !== undefined]

const acks = (packets: readonly Packet[]): Array<[string, number | undefined]> =>
  packets.filter((p) => p.cmd !== 'connack' && p.cmd !== 'suback' && p.cmd !== 'publish').map((p) => [p.cmd, p.messageId])

for (const kind of UPSTREAMS) {
  t.test(`${kind}: [MQTT-3.8.4-6] QoS 0/1/2 to a terminal arrive at the lower of the published and the granted QoS`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const prefix = `downgrade/${kind}/${way}`
      const terminal = await rawConnect(t, url, { clientId: `downgrade-${kind}-${way}` }, { autoAck: true })
      terminal.send({ cmd: 'subscribe', messageId: 1, subscriptions: QOS.map((q) => ({ topic: `${prefix}/${q}`, qos: q })) })
      const { granted: grants } = await terminal.next<ISubackPacket>((p) => p.cmd === 'suback')
      // A real QoS 0 publish (the oracle's helper publishes QoS 0 as QoS 1 to know it was queued).
      const publisher = await rawConnect(t, broker1.url, { clientId: `downgrade-pub-${kind}-${way}` }, { release: true })
      let id = 0
      for (const sub of QOS) for (const q of QOS) publisher.send(publishPacket(`${prefix}/${sub}`, `q${q}`, q, ++id))
      await publisher.next((p) => p.cmd === 'pubcomp' && p.messageId === id)
      for (const sub of QOS) publisher.send(publishPacket(`${prefix}/${sub}`, 'marker', 1, ++id))
      for (const sub of QOS) await terminal.next((p) => p.cmd === 'publish' && p.topic === `${prefix}/${sub}` && p.payload.toString() === 'marker')
      const delivered = publishes(terminal.packets)
      // [MQTT-4.3.3-1] each QoS 2 delivery the terminal PUBRECs is PUBRELed under its identifier
      const qos2 = delivered.filter((p) => p.qos === 2)
      await Promise.all(qos2.map((d) => terminal.next((p) => p.cmd === 'pubrel' && p.messageId === d.messageId)))
      seen[way] = {
        grants,
        // Ordered per topic and QoS only [MQTT-4.6.0-6]: an Aedes broker routes a QoS 2 message before a QoS 1 one sent ahead of it.
        byTopic: QOS.map((sub) => delivered.filter((p) => p.topic === `${prefix}/${sub}`).map(flags).sort()),
        pubrels: terminal.packets.filter((p) => p.cmd === 'pubrel').length
      }
      await publisher.disconnect()
      await terminal.disconnect()
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
    t.match(seen.direct, { grants: [0, 1, 2] })
    const byTopic = (seen.direct as { byTopic: Array<Array<[string, number]>> }).byTopic
    t.same(byTopic.map((deliveries) => deliveries.map(([payload, qos]) => [payload, qos])), QOS.map((sub) => [['marker', Math.min(1, sub)], ...QOS.map((q) => [`q${q}`, Math.min(q, sub)])]), 'min(published, granted)')
    t.match(seen.direct, { pubrels: 1 })
  })

  t.test(`${kind}: [MQTT-3.3.4-1] a terminal's QoS 0/1/2 PUBLISH is acked under its identifier and reaches Broker1 at its QoS, [MQTT-3.3.1-3] DUP not passed on`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const prefix = `upward/${kind}/${way}`
      const observer = await rawConnect(t, broker1.url, { clientId: `upward-observer-${kind}-${way}` }, { autoAck: true })
      await subscribe(observer, `${prefix}/#`, 2)
      const terminal = await rawConnect(t, url, { clientId: `upward-${kind}-${way}` })
      terminal.send(publishPacket(`${prefix}/0`, 'q0', 0, 0))
      terminal.send(publishPacket(`${prefix}/1`, 'q1', 1, 11))
      terminal.send(publishPacket(`${prefix}/1`, 'q1 sent with DUP', 1, 12, { dup: true }))
      terminal.send(publishPacket(`${prefix}/2`, 'q2', 2, 13))
      await terminal.next((p) => p.cmd === 'pubrec' && p.messageId === 13)
      terminal.send({ cmd: 'pubrel', messageId: 13 })
      await terminal.next((p) => p.cmd === 'pubcomp' && p.messageId === 13)
      terminal.send(publishPacket(`${prefix}/retained`, 'kept', 1, 14, { retain: true }))
      terminal.send(publishPacket(`${prefix}/marker`, 'marker', 1, 15))
      await terminal.next((p) => p.cmd === 'puback' && p.messageId === 15)
      await observer.next((p) => p.cmd === 'publish' && p.topic === `${prefix}/marker`)
      // Stored [MQTT-3.3.1-5]: a subscription made later gets it, with retain set [MQTT-3.3.1-8].
      const later = await rawConnect(t, broker1.url, { clientId: `upward-later-${kind}-${way}` }, { autoAck: true })
      await subscribe(later, `${prefix}/retained`, 1)
      const retained = await later.next<IPublishPacket>((p) => p.cmd === 'publish')
      seen[way] = {
        // [MQTT-3.3.4-1] none for QoS 0, PUBACK for QoS 1, PUBREC then PUBCOMP for QoS 2; [MQTT-2.3.1-6] same identifiers
        acks: acks(terminal.packets),
        // Sorted: an Aedes broker may route a QoS 2 message before a QoS 1 one (order is per topic and QoS, [MQTT-4.6.0-6]).
        atBroker1: publishes(observer.packets).map((p) => [p.topic.slice(prefix.length + 1), ...flags(p)]).sort(),
        retainedLater: flags(retained)
      }
      await later.disconnect()
      await terminal.disconnect()
      await observer.disconnect()
    }
    if (kind === 'aedes') {
      // Deliberate (README "What a terminal observes"): an Aedes broker passes a PUBLISH's DUP on to its subscribers.
      const direct = seen.direct as { atBroker1: unknown[][] }
      const withDup = direct.atBroker1.filter((m) => m[3] === true).map((m) => m[1])
      t.same(withDup, ['q1 sent with DUP'], 'straight at Aedes: the DUP passed on to the subscriber')
      const cleared = direct.atBroker1.map((m) => [...m.slice(0, 3), false, ...m.slice(4)])
      t.same(seen.tier, { ...direct, atBroker1: cleared }, 'through the tier: otherwise as straight at the broker')
    } else {
      t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
    }
    t.match(seen.tier, { acks: [['puback', 11], ['puback', 12], ['pubrec', 13], ['pubcomp', 13], ['puback', 14], ['puback', 15]] })
    t.same((seen.tier as { atBroker1: unknown[][] }).atBroker1.map((m) => m.slice(0, 5)), [
      ['0', 'q0', 0, false, false], ['1', 'q1 sent with DUP', 1, false, false], ['1', 'q1', 1, false, false],
      ['2', 'q2', 2, false, false], ['marker', 'marker', 1, false, false], ['retained', 'kept', 1, false, false]
    ], 'each at its QoS, DUP and retain clear on a live delivery [MQTT-3.3.1-9]')
  })

  t.test(`${kind}: a broker that grants less than asked: the deliveries are the broker's, the tier's SUBACK carries the QoS asked for`, async (t) => {
    const { broker1, targets } = await differential(t, kind, {}, { maxQos: 1 })
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const prefix = `granted/${kind}/${way}`
      const terminal = await rawConnect(t, url, { clientId: `granted-${kind}-${way}` }, { autoAck: true })
      const grants = [...await subscribe(terminal, `${prefix}/2`, 2), ...await subscribe(terminal, `${prefix}/1`, 1)]
      // mosquitto's max_qos 1 closes a QoS 2 publisher; Aedes' own publish goes at QoS 2.
      await broker1.publish(`${prefix}/2`, ['two'], kind === 'aedes' ? 2 : 1)
      await broker1.publish(`${prefix}/1`, ['one'], 1)
      await terminal.next((p) => p.cmd === 'publish' && p.topic === `${prefix}/1`)
      seen[way] = { grants, delivered: publishes(terminal.packets).map((p) => [p.topic.slice(prefix.length + 1), p.qos]) }
      await terminal.disconnect()
    }
    if (brokerOf(kind) === 'mosquitto') {
      // Deliberate (README "What a terminal observes"): Aedes 1.2 writes the SUBACK from the request.
      t.same(seen.direct, { grants: [1, 1], delivered: [['2', 1], ['1', 1]] }, 'mosquitto grants QoS 1 for QoS 2 (§3.9.3)')
      t.same(seen.tier, { grants: [2, 1], delivered: [['2', 1], ['1', 1]] }, 'through the tier: QoS 2 in the SUBACK, deliveries at the granted QoS 1')
    } else {
      t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
    }
  })

  t.test(`${kind}: [MQTT-3.10.4-4] UNSUBACK under the UNSUBSCRIBE's identifier, [MQTT-3.10.4-2] nothing new after it, other subscriptions kept`, async (t) => {
    const { broker1, broker2, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const prefix = `unsubscribe/${kind}/${way}`
      const id = `unsubscribe-${kind}-${way}`
      const terminal = await rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })
      await subscribe(terminal, [`${prefix}/a/#`, `${prefix}/a/b`, `${prefix}/keep`], 1)
      const unsubscribe = async (messageId: number, filters: string[]): Promise<number | undefined> => {
        const from = terminal.packets.length
        terminal.send({ cmd: 'unsubscribe', messageId, unsubscriptions: filters })
        return (await terminal.next((p) => p.cmd === 'unsuback', 5000, from)).messageId
      }
      // [MQTT-3.10.4-1] filters compare character by character: `a/+` is not `a/#`; [MQTT-3.10.4-5] acked all the same
      const notHeld = await unsubscribe(4242, [`${prefix}/a/+`])
      await broker1.publish(`${prefix}/a/b`, ['still subscribed'], 1)
      await broker1.publish(`${prefix}/keep`, ['marker 1'], 1)
      await terminal.next((p) => p.cmd === 'publish' && p.payload.toString() === 'marker 1')
      const held = await unsubscribe(4343, [`${prefix}/a/#`, `${prefix}/a/b`])
      // Through the tier the UNSUBACK is Aedes' own, before the brokers' (README): a SUBSCRIBE behind
      // it, answered once both brokers answered, makes sure they had the UNSUBSCRIBE.
      await subscribe(terminal, `${prefix}/barrier`, 1)
      await broker1.publish(`${prefix}/a/b`, ['after the UNSUBACK'], 1)
      await broker1.publish(`${prefix}/keep`, ['marker 2'], 1)
      await terminal.next((p) => p.cmd === 'publish' && p.payload.toString() === 'marker 2')
      // The session keeps it unsubscribed: nothing is queued for it meanwhile.
      await terminal.disconnect()
      await broker1.publish(`${prefix}/a/b`, ['while away'], 1)
      await broker1.publish(`${prefix}/keep`, ['marker 3'], 1)
      const again = await rawConnect(t, url, { clientId: id, clean: false }, { autoAck: true })
      await again.next((p) => p.cmd === 'publish' && p.payload.toString() === 'marker 3')
      seen[way] = {
        unsubacks: [notHeld, held],
        delivered: [...new Set(publishes(terminal.packets).map((p) => p.payload.toString()))],
        afterReconnect: publishes(again.packets).map((p) => p.payload.toString())
      }
      if (way === 'tier') {
        // Broker2's deliveries reach a terminal of the tier (README): its session was unsubscribed too.
        await broker2.publish(`${prefix}/a/b`, ['at Broker2'], 1)
        await broker2.publish(`${prefix}/keep`, ['Broker2 marker'], 1)
        await again.next((p) => p.cmd === 'publish' && p.payload.toString() === 'Broker2 marker')
        t.same(publishes(again.packets).map((p) => p.payload.toString()), ['marker 3', 'Broker2 marker'], 'unsubscribed at Broker2 as well')
      }
      await again.disconnect()
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
    t.match(seen.direct, { unsubacks: [4242, 4343], delivered: ['still subscribed', 'marker 1', 'marker 2'], afterReconnect: ['marker 3'] })
  })

  t.test(`${kind}: [MQTT-4.6.0-2..6] 1,000 QoS 1 and 200 QoS 2 messages: acks and deliveries in the order sent`, async (t) => {
    const { targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    const [qos1Count, qos2Count] = [1000, 200]
    // mosquitto drops an incoming QoS 2 message beyond its max_inflight_messages (20), straight or through the tier (README Limits).
    const qos2Window = 10
    for (const [way, url] of targets) {
      const prefix = `order/${kind}/${way}`
      const subscriber = await rawConnect(t, url, { clientId: `order-sub-${kind}-${way}` }, { autoAck: true })
      await subscribe(subscriber, `${prefix}/1`, 1)
      await subscribe(subscriber, `${prefix}/2`, 2)
      const publisher = await rawConnect(t, url, { clientId: `order-pub-${kind}-${way}` }, { release: true })
      for (let i = 0; i < qos1Count; i++) publisher.send(publishPacket(`${prefix}/1`, String(i), 1, i + 1))
      for (let i = 0; i < qos2Count; i++) {
        if (i >= qos2Window) await publisher.next((p) => p.cmd === 'pubcomp' && p.messageId === qos1Count + 1 + i - qos2Window, 10_000)
        publisher.send(publishPacket(`${prefix}/2`, String(i), 2, qos1Count + 1 + i))
      }
      await publisher.next((p) => p.cmd === 'pubcomp' && p.messageId === qos1Count + qos2Count, 10_000)
      await subscriber.next((p) => p.cmd === 'publish' && p.topic === `${prefix}/2` && p.payload.toString() === String(qos2Count - 1), 10_000)
      await subscriber.next((p) => p.cmd === 'publish' && p.topic === `${prefix}/1` && p.payload.toString() === String(qos1Count - 1), 10_000)
      const ids = (cmd: string): number[] => publisher.packets.filter((p) => p.cmd === cmd).map((p) => p.messageId!)
      const delivered = (topic: string): IPublishPacket[] => publishes(subscriber.packets).filter((p) => p.topic === topic)
      const qos2Deliveries = delivered(`${prefix}/2`)
      const last = qos2Deliveries.at(-1)!
      await subscriber.next((p) => p.cmd === 'pubrel' && p.messageId === last.messageId, 10_000, subscriber.packets.indexOf(last))
      seen[way] = {
        pubacks: ids('puback').join() === range(1, qos1Count + 1).join(), // [MQTT-4.6.0-2]
        pubrecs: ids('pubrec').join() === range(qos1Count + 1, qos1Count + qos2Count + 1).join(), // [MQTT-4.6.0-3]
        pubcomps: ids('pubcomp').join() === ids('pubrec').join(),
        qos1: delivered(`${prefix}/1`).map((p) => p.payload.toString()).join() === range(0, qos1Count).join(), // [MQTT-4.6.0-6]
        qos2: qos2Deliveries.map((p) => p.payload.toString()).join() === range(0, qos2Count).join(),
        // [MQTT-4.6.0-4] the server's PUBRELs in the order of the terminal's PUBRECs
        pubrels: subscriber.packets.filter((p) => p.cmd === 'pubrel').map((p) => p.messageId).join() === qos2Deliveries.map((p) => p.messageId).join()
      }
      await publisher.disconnect()
      await subscriber.disconnect()
    }
    t.same(seen.tier, seen.direct, 'through the tier as straight at the broker')
    t.same(seen.direct, { pubacks: true, pubrecs: true, pubcomps: true, qos1: true, qos2: true, pubrels: true })
  })
}
