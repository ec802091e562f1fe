/**
 * PUBLISH, step 5 of the method: a terminal's message goes upstream to the
 * broker the router picks, and its QoS 1 PUBACK / QoS 2 PUBREC is held in
 * `authorizePublish` (the only hook that can hold a QoS 1 PUBACK, AEDES-NOTES)
 * until that broker acked it.
 */
import type { AuthorizePublishHook, BrokerPublish, Callback, Client, PublishPacket } from '../aedes-types.js'
import { OutgoingPublish } from '../failover/outbox.js'
import type { DualBroker } from '../plugin.js'

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

export function authorizePublish (tier: DualBroker, theirs: AuthorizePublishHook): AuthorizePublishHook {
  return (client, packet, done) => {
    if (client === null) return theirs(client, packet, done)
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
  const limit = tier.options.limits.maxInflight
  if (limit > 0 && packet.qos > 0 && session.outbox.size >= limit) {
    // MQTT 3.1.1 has no way to say "slow down": the terminal is disconnected and resends unacked messages.
    return done(new Error(`limits.maxInflight exceeded: ${limit} publishes of this terminal are not yet safe`))
  }
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
  session.outbox.send(new OutgoingPublish(packet.topic, payload, packet.qos, packet.retain, client.id, tier.messageIds?.next(), done))
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
