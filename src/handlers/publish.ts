/**
 * PUBLISH, step 5 of the method: a terminal's message goes upstream to the
 * broker the router picks, and its QoS 1 PUBACK / QoS 2 PUBREC is sent only
 * once the message is safe (acked by that broker, or stored).
 *
 * Aedes reads a terminal's next socket chunk only after every packet of the
 * current one is done, so holding `authorizePublish` until an upstream ack
 * (the only way Aedes itself can hold a QoS 1 PUBACK: docs/ARCHITECTURE.md) would cost
 * one upstream round trip per chunk. For QoS 1 and 2 the tier therefore
 * releases the hook at once with the packet marked QoS 0 — Aedes then writes
 * no PUBACK or PUBREC of its own — and writes it itself when the message is
 * safe. The terminal's PUBREL goes on to Aedes, which answers PUBCOMP to any
 * PUBREL [MQTT-4.3.3-2]; a QoS 2 resend before it is recognised by the
 * tier's own exchanges (qos2-exchanges.ts), not Aedes'.
 */
import { type AuthorizePublishHook, type Callback, type Client, type PublishPacket, takeOverPublishAck } from '../aedes/internals.js'
import { DualBrokerError } from '../errors.js'
import { ackPacket } from '../mqtt/ack-packets.js'
import { PublishObservations } from '../node/observations.js'
import { OutgoingPublish } from '../routing/outbox.js'
import type { TerminalSession } from '../terminal/session.js'
import { corkForTurn } from '../mqtt/packet-writer.js'
import type { PublishPorts } from './ports.js'

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
class PublishAdmissions {
  private readonly queue: Admission[] = []
  /** Made when the deployment first observes publishes (Aedes' `publish` event, its `published` hook). */
  private observations: PublishObservations | undefined

  constructor (private readonly session: TerminalSession, private readonly ports: PublishPorts) {}

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
      else this.send(head.packet, head.done)
    }
  }

  private send (packet: PublishPacket, done: Callback): void {
    const message = prepare(this.session, this.ports.messageIds, packet, done)
    if (message === undefined) return
    this.observe(message, packet)
    this.session.outbox.send(message)
  }

  /** The deployment's code sees the publish once it is accepted, in the terminal's order (src/node/observations.ts). */
  private observe (message: OutgoingPublish, packet: PublishPacket): void {
    if (!this.ports.observers.active()) return
    this.observations ??= new PublishObservations(this.session.client, this.ports.observers)
    // As Aedes shows it: the terminal's packet, with the QoS the terminal sent (the tier took its ack over).
    this.observations.expect(message, { ...packet, qos: message.qos, dup: false })
  }
}

const TOPIC_TOO_LONG = new DualBrokerError('DUALBROKER_ERR_TOPIC_TOO_LONG', 'topic longer than limits.maxTopicLength')
const NO_SESSION = new DualBrokerError('DUALBROKER_ERR_NO_SESSION', 'terminal has no upstream session')

export function authorizePublish (ports: PublishPorts, theirs: AuthorizePublishHook): AuthorizePublishHook {
  // By client: one lookup per publish; a client has one session for its whole connection.
  const admissions = new WeakMap<Client, PublishAdmissions>()
  return (client, packet, done) => {
    if (client === null) return theirs(client, packet, done)
    if (ports.caps.refusesTopic(client, packet.topic)) return done(TOPIC_TOO_LONG) // limits.maxTopicLength: Aedes closes the connection
    let queue = admissions.get(client)
    if (queue === undefined) {
      const session = ports.sessions.get(client)
      if (session === undefined) return done(NO_SESSION)
      queue = new PublishAdmissions(session, ports)
      admissions.set(client, queue)
    }
    const admission = queue.admit(packet, done)
    theirs(client, packet, (error) => queue.decide(admission, error))
  }
}

/**
 * One admitted publish, ready for the terminal's outbox; `done` acknowledges
 * it to the terminal. Undefined when there is nothing to send: the session
 * ended, or a QoS 2 resend.
 */
function prepare (session: TerminalSession, messageIds: PublishPorts['messageIds'], packet: PublishPacket, done: Callback): OutgoingPublish | undefined {
  if (session.ended) {
    done(NO_SESSION)
    return undefined
  }
  if (typeof packet.payload === 'string') packet.payload = Buffer.from(packet.payload)
  const content = packet as PublishPacket & { payload: Buffer }
  const { qos } = content
  const clientId = session.client.id
  if (qos === 0) return new OutgoingPublish(content, clientId, messageIds?.next(), done)
  const messageId = content.messageId!
  // Made before the QoS is taken over below: the message keeps the terminal's QoS.
  const message = new OutgoingPublish(content, clientId, messageIds?.next(), ackWhenSafe(session, messageId, qos === 1 ? 'puback' : 'pubrec'))
  takeOverPublishAck(packet) // read by Aedes as soon as `done` is called: it writes no ack and routes nothing (src/aedes/)
  session.flow.admit(done)
  if (qos === 2) {
    const whenSafe = session.qos2.begin(messageId, message.acknowledge)
    if (whenSafe === undefined) return // a resend [MQTT-4.3.3-2]: its PUBREC goes once the first is safe; sent nowhere
    message.acknowledge = whenSafe
  }
  return message
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
