/** `$` topics, retained messages and overlapping subscriptions, straight at Broker1 and through the tier. */
import t from 'tap'
import type { IPublishPacket } from 'mqtt-packet'
import { sysTopicsPlugin } from '../../plugins/sys-topics.js'
import { rawConnect } from '../support/raw-terminal.js'
import { BROKER_KINDS, differential, publishes, subscribe } from '../support/differential.js'

for (const kind of BROKER_KINDS) {
  t.test(`${kind}: [MQTT-4.7.2-1] filters that start with a wildcard match no $ topic, the tier's own included`, async (t) => {
    const { broker1, tier, targets } = await differential(t, kind)
    const sys = sysTopicsPlugin(tier.tier, tier.aedes) // retained $SYS/dual-broker/* on the tier
    t.teardown(sys.close)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const terminal = await rawConnect(t, url, { clientId: `dollar-${kind}-${way}` })
      const granted = await subscribe(terminal, ['#', '+/#', '+'], 0)
      await broker1.publish(`dollar/${way}/marker`, ['marker'], 1)
      await terminal.next((p) => p.cmd === 'publish' && p.topic === `dollar/${way}/marker`)
      seen[way] = { granted, dollarTopics: publishes(terminal.packets).filter((p) => p.topic.startsWith('$')).map((p) => p.topic) }
      await terminal.disconnect()
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
  })

  t.test(`${kind}: $SYS/# through the tier shows the tier's own topics, never another terminal's id or filters`, async (t) => {
    const { broker1, tier } = await differential(t, kind)
    const sys = sysTopicsPlugin(tier.tier, tier.aedes)
    t.teardown(sys.close)
    const watcher = await rawConnect(t, tier.url, { clientId: `sys-watcher-${kind}` })
    await subscribe(watcher, ['$SYS/#', 'sys/marker'], 0)
    await watcher.next((p) => p.cmd === 'publish' && p.topic === '$SYS/dual-broker/mode')
    const other = await rawConnect(t, tier.url, { clientId: `secret-device-${kind}` })
    await subscribe(other, 'secret/filter/#', 1)
    // Aedes announces locally within a turn or two; the marker makes a round trip through Broker1.
    await broker1.publish('sys/marker', ['marker'], 1)
    await watcher.next((p) => p.cmd === 'publish' && p.topic === 'sys/marker')
    // The brokers' own $SYS is theirs to show (their ACLs apply); the tier's Aedes announces nothing.
    const leaked = publishes(watcher.packets).filter((p) => p.topic.startsWith(`$SYS/${tier.aedes.id}/`))
    t.same(leaked.map((p) => p.topic), [], 'no announcement by the tier\'s Aedes')
    t.ok(publishes(watcher.packets).some((p) => p.topic === '$SYS/dual-broker/state'), 'the tier\'s state topic is there')
  })

  t.test(`${kind}: a new subscription gets the retained value of the broker that takes publishes, not a stale one`, async (t) => {
    const { broker1, broker2, targets } = await differential(t, kind)
    // As after an outage: a value published to Broker2 while Broker1 was down, then a newer one at Broker1.
    await broker2.publish('retained/value', ['stale'], 1, true)
    await broker1.publish('retained/value', ['current'], 1, true)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const terminal = await rawConnect(t, url, { clientId: `retained-${kind}-${way}` }, { autoAck: true })
      await subscribe(terminal, ['retained/#', `retained-marker/${way}`], 1)
      await broker1.publish(`retained-marker/${way}`, ['marker'], 1)
      await terminal.next((p) => p.cmd === 'publish' && p.topic === `retained-marker/${way}`)
      // [MQTT-3.3.1-9] retain set on what the subscription brought
      seen[way] = publishes(terminal.packets).filter((p) => p.topic === 'retained/value').map((p: IPublishPacket) => [p.payload.toString(), p.retain])
      await terminal.disconnect()
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at Broker1: ${JSON.stringify(seen.direct)}`)
  })

  t.test(`${kind}: retained set, cleared, and overlapping subscriptions`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const topic = `overlap/${way}/a`
      await broker1.publish(topic, ['kept'], 1, true)
      const first = await rawConnect(t, url, { clientId: `overlap-${kind}-${way}` }, { autoAck: true })
      const granted = await subscribe(first, [`overlap/${way}/#`, `overlap/${way}/+`, topic], 1)
      // One retained copy per matching filter (both brokers; [MQTT-3.3.5-1] allows one or several), all before the clear.
      for (let copies = 1; copies <= 3; copies++) {
        await first.next((p) => p.cmd === 'publish' && p.payload.toString() === 'kept' && publishes(first.packets).filter((q) => q.payload.toString() === 'kept').length >= copies)
      }
      await broker1.publish(topic, [''], 1, true) // [MQTT-3.3.1-10] a zero-byte retained message clears it
      await broker1.publish(topic, ['live'], 1)
      await first.next((p) => p.cmd === 'publish' && p.payload.toString() === 'live')
      await first.disconnect()
      const second = await rawConnect(t, url, { clientId: `overlap2-${kind}-${way}` }, { autoAck: true })
      await subscribe(second, [`overlap/${way}/#`, `overlap-marker/${way}`], 1)
      await broker1.publish(`overlap-marker/${way}`, ['marker'], 1)
      await second.next((p) => p.cmd === 'publish' && p.topic === `overlap-marker/${way}`)
      seen[way] = {
        granted,
        // [MQTT-3.3.5-1] a broker may deliver once per matching subscription, or once
        first: publishes(first.packets).map((p) => [p.payload.toString(), p.retain]),
        afterClear: publishes(second.packets).filter((p) => p.topic === topic).length
      }
      await second.disconnect()
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
  })
  t.test(`${kind}: [MQTT-3.3.5-1] overlapping filters of different QoS, a message of each QoS, then one filter fewer`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const base = `qos-overlap/${way}`
      const terminal = await rawConnect(t, url, { clientId: `qos-overlap-${kind}-${way}` }, { autoAck: true })
      const from = terminal.packets.length
      const filters: Array<[string, 0 | 1 | 2]> = [['#', 0], ['+', 2], ['a', 1], ['z/+', 0], ['+/k', 2], ['e', 2], ['e/#', 0]]
      terminal.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map(([filter, qos]) => ({ topic: `${base}/${filter}`, qos })) })
      await terminal.next((p) => p.cmd === 'suback', 5000, from)
      for (const qos of [2, 1, 0] as const) await broker1.publish(`${base}/a`, [`q${qos}`], qos)
      await broker1.publish(`${base}/b/c`, ['deep'], 2) // `#` alone matches
      await broker1.publish(`${base}/z/k`, ['zk'], 2)
      await broker1.publish(`${base}/e`, ['e'], 2) // `e/#` matches `e` too [MQTT-4.7.1-2]
      terminal.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [`${base}/+`] })
      await terminal.next((p) => p.cmd === 'unsuback')
      await broker1.publish(`${base}/a`, ['after'], 2)
      await broker1.publish(`${base}/marker`, ['marker'], 0)
      await terminal.next((p) => p.cmd === 'publish' && p.payload.toString() === 'marker')
      seen[way] = publishes(terminal.packets).map((p) => [p.topic.slice(base.length), p.payload.toString(), p.qos])
      await terminal.disconnect()
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at Broker1: ${JSON.stringify(seen.direct)}`)
  })
}
