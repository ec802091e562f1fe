import type { UpstreamLink } from '../upstream/upstream-link.js'
import type { Router } from './router.js'

export type Acknowledge = (error?: Error | null) => void

/** One terminal publish on its way upstream; the terminal's ack waits in `acknowledge`. */
export class OutgoingPublish {
  target: UpstreamLink | undefined
  constructor (
    readonly topic: string,
    readonly payload: Buffer,
    readonly qos: 0 | 1 | 2,
    readonly retain: boolean,
    readonly acknowledge: Acknowledge
  ) {}
}

/**
 * A terminal's QoS 1/2 publishes until a broker acked them. Messages go out in
 * the order they were accepted; what was in flight on a link that went down is
 * sent again, in the same order, on the next target (at least once, never lost).
 */
export class Outbox {
  private readonly inflight = new Set<OutgoingPublish>()
  private waiting: OutgoingPublish[] = []
  droppedQos0 = 0

  constructor (private readonly links: readonly UpstreamLink[], private readonly router: Router) {}

  get size (): number {
    return this.inflight.size + this.waiting.length
  }

  send (message: OutgoingPublish): void {
    if (this.waiting.length > 0) {
      this.waiting.push(message) // keep order behind what already waits
      return
    }
    this.dispatch(message)
  }

  private dispatch (message: OutgoingPublish): boolean {
    const link = this.router(message.topic, this.links)
    if (message.qos === 0) {
      if (link === undefined) this.droppedQos0++
      else link.publish(message.topic, message.payload, 0, message.retain, noop)
      message.acknowledge()
      return true
    }
    if (link === undefined) return false
    message.target = link
    this.inflight.add(message)
    link.publish(message.topic, message.payload, message.qos, message.retain, (error) => {
      // A late ack from a link the message was already moved away from is ignored.
      if (message.target !== link || error !== undefined && error !== null) return
      this.inflight.delete(message)
      message.acknowledge()
    })
    return true
  }

  /** A link came online: send what waited for one. */
  flush (): void {
    const waiting = this.waiting
    this.waiting = []
    let i = 0
    while (i < waiting.length && this.dispatch(waiting[i]!)) i++
    if (i < waiting.length) this.waiting = waiting.slice(i).concat(this.waiting)
  }

  /** A link went offline: what it had in flight goes first, to the next target. */
  reroute (link: UpstreamLink): void {
    const moved: OutgoingPublish[] = []
    for (const message of this.inflight) {
      if (message.target !== link) continue
      message.target = undefined
      this.inflight.delete(message)
      moved.push(message)
    }
    if (moved.length === 0) return
    this.waiting = moved.concat(this.waiting)
    this.flush()
  }

  /** The terminal is gone: nothing will acknowledge to it any more. */
  clear (): void {
    this.inflight.clear()
    this.waiting = []
  }
}

function noop (): void {}
