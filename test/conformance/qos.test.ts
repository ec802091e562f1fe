/** QoS 0/1/2 from a terminal, as Broker1's subscribers observe it, straight and through the tier. */
import t from 'tap'
import type { IPublishPacket } from 'mqtt-packet'
import { record } from '../support/recorder.js'
import { rawConnect } from '../support/raw-terminal.js'
import { brokerOf, differential, UPSTREAMS } from '../support/differential.js'

const publish = (topic: string, payload: string, messageId: number, dup: boolean): IPublishPacket =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 2, messageId, retain: false, dup })

for (const kind of UPSTREAMS) {
  t.test(`${kind}: [MQTT-4.3.3-2] a QoS 2 PUBLISH resent with DUP before PUBREL reaches subscribers once`, async (t) => {
    const { broker1, targets } = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of targets) {
      const topic = `exactly-once/${kind}/${way}`
      const subscriber = await record(t, broker1.url, `${topic}/#`, { qos: 2, clientId: `eo-sub-${kind}-${way}` })
      const id = `eo-pub-${kind}-${way}`
      const terminal = await rawConnect(t, url, { clientId: id, clean: false })
      // On one connection: the same packet identifier again, with DUP, before PUBREL.
      terminal.send(publish(`${topic}/same`, 'same connection', 10, false))
      await terminal.next((p) => p.cmd === 'pubrec' && p.messageId === 10)
      const before = terminal.packets.length
      terminal.send(publish(`${topic}/same`, 'same connection', 10, true))
      await terminal.next((p) => p.cmd === 'pubrec' && p.messageId === 10, 5000, before)
      terminal.send({ cmd: 'pubrel', messageId: 10 })
      await terminal.next((p) => p.cmd === 'pubcomp' && p.messageId === 10)
      // Across a reconnect: PUBREC received, connection lost, the PUBLISH resent with DUP [MQTT-4.4.0-1].
      terminal.send(publish(`${topic}/reconnect`, 'across a reconnect', 11, false))
      await terminal.next((p) => p.cmd === 'pubrec' && p.messageId === 11)
      await terminal.drop()
      const again = await rawConnect(t, url, { clientId: id, clean: false })
      again.send(publish(`${topic}/reconnect`, 'across a reconnect', 11, true))
      await again.next((p) => p.cmd === 'pubrec' && p.messageId === 11)
      again.send({ cmd: 'pubrel', messageId: 11 })
      await again.next((p) => p.cmd === 'pubcomp' && p.messageId === 11)
      again.send(publish(`${topic}/marker`, 'marker', 12, false))
      await again.next((p) => p.cmd === 'pubrec' && p.messageId === 12)
      again.send({ cmd: 'pubrel', messageId: 12 })
      await subscriber.waitForTopic(`${topic}/marker`)
      seen[way] = subscriber.messages.map((m) => [m.topic.slice(topic.length + 1), m.qos])
      await again.disconnect()
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
  })
}
