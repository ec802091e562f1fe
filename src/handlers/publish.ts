/**
 * PUBLISH, step 5 of the method: a terminal's message goes upstream to the
 * broker the router picks, and its QoS 1 PUBACK / QoS 2 PUBREC is sent only
 * once the message is safe (acked by that broker, or stored).
 *
 * Aedes reads a terminal's next socket chunk only after every packet of the
 * current one is done, so holding `authorizePublish` until an upstream ack
 * (the only way Aedes itself can hold a QoS 1 PUBACK, AEDES-NOTES) would cost
 * one upstream round trip per chunk. For QoS 1 and 2 the tier therefore
 * releases the hook at once with the packet marked QoS 0 — Aedes then writes
 * no PUBACK or PUBREC of its own — and writes it itself when the message is
 * safe. The terminal's PUBREL goes on to Aedes, which answers PUBCOMP to any
 * PUBREL [MQTT-4.3.3-2]; a QoS 2 resend before it is recognised by the
 * tier's own exchanges (qos2-exchanges.ts), not Aedes'.
 */
import type { AuthorizePublishHook, BrokerPublish, Callback, Client, PublishPacket } from '../aedes-types.js'
import { OutgoingPublish } from '../failover/outbox.js'
import type { DualBroker } from '../plugin.js'
import type { TerminalSession } from '../upstream/terminal-session.js'
import { corkForTurn } from '../upstream/packet-writer.js'
import { ackPacket } from '../upstream/ack-packets.js'

/** A publish waiting for the user's own authorizePublish, kept in arrival order. */
class Admission {
  decided = false
  error: Error | null | undefined = undefined
  constructor (readonly packet: PublishPacket, readonly done: Callback) {}
}

/**
 * Aedes dispatches one socket read's packets concurrently, and a user's hook
 * may answer out of order: admissions are queued synchronously, in call order,
 * and released only from the head, so Broker1 sees the terminal's order.
 */
export class PublishAdmissions {
  private readonly queue: Admission[] = []

  constructor (private readonly tier: DualBroker, private readonly client: Client) {}

  admit (packet: PublishPacket, done: Callback): Admission {
    const admission = new Admission(packet, done)
    this.queue.push(admission)
    return admission
  }

  decide (admission: Admission, error: Error | null | undefined): void {
    admission.decided = true
    admission.error = error
    while (this.queue.length > 0 && this.queue[0]!.decided) {
      const head = this.queue.shift()!
      if (head.error != null) head.done(head.error)
      else this.tier.forward(this.client, head.packet, head.done)
    }
  }
}

const TOPIC_TOO_LONG = new Error('topic longer than limits.maxTopicLength')

export function authorizePublish (tier: DualBroker, theirs: AuthorizePublishHook): AuthorizePublishHook {
  return (client, packet, done) => {
    if (client === null) return theirs(client, packet, done)
    if (tier.caps.refusesTopic(client, packet.topic)) return done(TOPIC_TOO_LONG) // limits.maxTopicLength: Aedes closes the connection
    const admissions = tier.admissions(client)
    if (admissions === undefined) return done(new Error('terminal has no upstream session'))
    const admission = admissions.admit(packet, done)
    theirs(client, packet, (error) => admissions.decide(admission, error))
  }
}

/** Routes one admitted publish upstream; `done` acknowledges it to the terminal. */
export function forward (tier: DualBroker, client: Client, packet: PublishPacket, done: Callback): void {
  const session = tier.sessions.get(client)
  if (session === undefined) return done(new Error('terminal has no upstream session'))
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
  const qos = packet.qos
  if (qos === 0) return session.outbox.send(new OutgoingPublish(packet.topic, payload, qos, packet.retain, client.id, tier.messageIds?.next(), done))
  let acknowledge = ackWhenSafe(session, packet.messageId!, qos === 1 ? 'puback' : 'pubrec')
  packet.qos = 0 // read by Aedes right after this hook: it writes no ack, routes nothing (see localPublish)
  session.flow.admit(done)
  if (qos === 2) {
    const whenSafe = session.qos2.begin(packet.messageId!, acknowledge)
    if (whenSafe === undefined) return // a resend: its PUBREC goes once the first is safe; sent nowhere
    acknowledge = whenSafe
  }
  session.outbox.send(new OutgoingPublish(packet.topic, payload, qos, packet.retain, client.id, tier.messageIds?.next(), acknowledge))
}

function ackWhenSafe (session: TerminalSession, messageId: number, ack: 'puback' | 'pubrec'): Callback {
  return (error) => {
    session.flow.settled()
    const client = session.client
    if (client.closed) return
    // Not safe (e.g. the store refused it): no ack; the terminal is disconnected and resends.
    if (error != null) return client.close()
    // The acks that become safe in one tick leave in one write, not one syscall each.
    corkForTurn(client.conn)
    client.conn.write(ackPacket(ack, messageId))
  }
}

/**
 * Aedes would route a terminal's publish locally, store it as retained and
 * queue it for offline clients: all of that happens at the brokers instead,
 * so nothing reaches a terminal twice. Publishes of Aedes itself ($SYS) and of
 * plugins (client null) keep Aedes' own path.
 */
export function localPublish (original: BrokerPublish): BrokerPublish {
  return function publish (this: unknown, packet, client, done) {
    if (typeof client === 'object' && client !== null) {
      done?.()
      return
    }
    original.call(this, packet, client, done)
  }
}
