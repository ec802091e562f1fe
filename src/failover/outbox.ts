import type { UpstreamLink, UpstreamPublish } from '../upstream/upstream-link.js'
import { AckedWindow } from './acked-window.js'
import type { Policy, Qos } from './policy.js'
import type { Route } from './router.js'

export type Acknowledge = (error?: Error | null) => void

/** What the outbox needs from the tier: the policy, the routing decision, the store. */
export interface Forwarding {
  policyFor: (topic: string) => Policy
  route: (policy: Policy, links: readonly UpstreamLink[]) => Route
  /** Resolves once the store committed the message. */
  store: (message: OutgoingPublish, policy: Policy, anyBroker: boolean) => Promise<unknown>
  /** Discarded by policy, or a QoS 0 publish with nowhere to go. */
  dropped: (topic: string, qos0: boolean) => void
  /** A copy of a message was recognised on its way to a terminal and not delivered. */
  duplicate: () => void
  /** A broker acked (or, QoS 0, was written) a live publish. */
  forwarded: (link: UpstreamLink, qos: Qos, sentAt: number) => void
}

/** For a publish sent again after its broker was lost: the terminal had its ack already. */
const ALREADY_ACKNOWLEDGED: Acknowledge = () => {}

/** One terminal publish on its way upstream; the terminal's ack waits in `acknowledge`. */
export class OutgoingPublish implements UpstreamPublish {
  target: UpstreamLink | undefined
  /** performance.now() when sent, then when acked: monotonic, sub-millisecond. */
  sentAt = 0
  /** Parts still to complete before the terminal is acked (2 for `both`: Broker2 and the store). */
  parts = 1
  stored = false
  /** Already acknowledged to the terminal: sent again only because its broker crashed right after acking. */
  acknowledged = false
  constructor (
    readonly topic: string,
    readonly payload: Buffer,
    public qos: Qos,
    readonly retain: boolean,
    readonly clientId: string,
    /** The tier's id of this message (see Deduplicator), or undefined when no upstream speaks MQTT 5. */
    readonly id: string | undefined,
    private readonly acknowledge: Acknowledge
  ) {}

  complete (error?: Error | null): void {
    if (this.acknowledged) return
    if (error == null && --this.parts > 0) return
    this.parts = 0
    this.acknowledged = true
    this.acknowledge(error ?? undefined)
  }
}

/**
 * A terminal's publishes until they are safe: acked by the broker they were
 * routed to, or committed to the store. Messages go out in the order they were
 * accepted; what was in flight on a session that went down is routed again, in
 * the same order (at least once, never lost).
 */
export class Outbox {
  private readonly inflight = new Set<OutgoingPublish>()
  private waiting: OutgoingPublish[] = []
  /** Live publishes acked in the last `resendWindowMs`; made on the first, so a terminal that only subscribes pays nothing. */
  private acked: AckedWindow | undefined
  private clientId = ''

  constructor (
    private readonly links: readonly UpstreamLink[],
    private readonly forwarding: Forwarding,
    private readonly resendWindowMs: number
  ) {}

  get size (): number {
    return this.inflight.size + this.waiting.length
  }

  /** The session whose oldest live publish has waited longer than `timeoutMs` for its ack, if any. */
  overdue (now: number, timeoutMs: number): UpstreamLink | undefined {
    for (const message of this.inflight) return now - message.sentAt > timeoutMs ? message.target : undefined
    return undefined
  }

  send (message: OutgoingPublish): void {
    if (this.waiting.length > 0 || !this.dispatch(message)) this.waiting.push(message)
  }

  /** Returns false when the message must wait for a session to come online. */
  private dispatch (message: OutgoingPublish): boolean {
    const policy = this.forwarding.policyFor(message.topic)
    if (policy.maxQos !== undefined && message.qos > policy.maxQos) message.qos = policy.maxQos
    const route = this.forwarding.route(policy, this.links)
    switch (route.kind) {
      case 'wait':
        if (message.qos > 0) return false
        this.forwarding.dropped(message.topic, true) // QoS 0 is never held: at most once
        message.complete()
        return true
      case 'drop':
        this.forwarding.dropped(message.topic, false)
        message.complete()
        return true
      case 'store':
        this.store(message, policy, route.anyBroker)
        return true
      case 'both':
        message.parts = 2
        this.store(message, policy, false)
        this.sendLive(message, route.link)
        return true
      case 'live':
        this.sendLive(message, route.link)
        return true
    }
  }

  private store (message: OutgoingPublish, policy: Policy, anyBroker: boolean): void {
    message.stored = true
    this.forwarding.store(message, policy, anyBroker).then(() => message.complete(), (error: Error) => message.complete(error))
  }

  private sendLive (message: OutgoingPublish, link: UpstreamLink): void {
    if (message.qos > 0) {
      message.target = link
      message.sentAt = performance.now()
      this.inflight.add(message)
    }
    link.publish(message)
  }

  /**
   * `link`'s broker acked a live publish (QoS 0: it was written, and Aedes
   * reads the terminal on only then: backpressure for QoS 0).
   */
  published (message: OutgoingPublish, link: UpstreamLink): void {
    if (message.qos === 0) {
      this.forwarding.forwarded(link, 0, 0)
      message.complete()
      return
    }
    // A late ack from a session the message was already moved away from is ignored.
    if (message.target !== link) return
    this.inflight.delete(message)
    message.target = undefined
    this.forwarding.forwarded(link, message.qos, message.sentAt)
    message.sentAt = performance.now()
    if (!message.stored) this.remember(message, link)
    message.complete()
  }

  private remember (message: OutgoingPublish, link: UpstreamLink): void {
    if (this.resendWindowMs <= 0) return
    this.clientId = message.clientId
    this.acked ??= new AckedWindow(this.resendWindowMs)
    this.acked.add(message, link.index, message.sentAt)
  }

  /**
   * What `link`'s broker acked in the last `resendWindowMs`: a broker killed
   * right after acking may not have passed the message on (mosquitto acks
   * before it writes to subscribers), so those are sent again (at least once).
   */
  private recentlyAckedBy (link: UpstreamLink): OutgoingPublish[] {
    return (this.acked?.takeAckedBy(link.index, performance.now()) ?? []).map(({ topic, payload, qos, retain, id }) => {
      const again = new OutgoingPublish(topic, payload, qos, retain, this.clientId, id, ALREADY_ACKNOWLEDGED)
      again.acknowledged = true // the terminal had its ack when the broker acked the first time
      return again
    })
  }

  /** A session came online, or the tier's mode changed: route again what waits. */
  flush (): void {
    const waiting = this.waiting
    this.waiting = []
    let i = 0
    while (i < waiting.length && this.dispatch(waiting[i]!)) i++
    if (i < waiting.length) this.waiting = waiting.slice(i).concat(this.waiting)
  }

  /** A session went offline: what it had in flight is routed again, ahead of what waits. */
  reroute (link: UpstreamLink): void {
    const moved = this.recentlyAckedBy(link)
    for (const message of this.inflight) {
      if (message.target !== link) continue
      message.target = undefined
      this.inflight.delete(message)
      // `both`: the store already holds it for Broker1; Broker2's copy was best effort.
      if (message.stored) message.complete()
      else moved.push(message)
    }
    if (moved.length === 0) return
    this.waiting = moved.concat(this.waiting)
    this.flush()
  }

  /** The terminal is gone: nothing will acknowledge to it any more. */
  clear (): void {
    this.inflight.clear()
    this.waiting = []
    this.acked = undefined
  }
}
