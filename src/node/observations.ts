import type { Client, PublishPacket } from '../aedes/internals.js'
import type { OutgoingPublish, PublishObserver } from '../routing/outbox.js'

/** How the deployment's code is shown a publish (Aedes' `published` hook and `publish` event). */
export interface PublishObservers {
  /** Whether anyone observes publishes now: nothing is queued otherwise. */
  readonly active: () => boolean
  readonly observe: (packet: PublishPacket, client: Client | null, failed: (error?: Error | null) => void) => void
}

/**
 * One publisher's publishes (a terminal, or the node's own code), shown to the
 * deployment's observers once each is accepted — QoS 0 forwarded, QoS 1/2 safe
 * — and in the order the publisher sent them, as plain Aedes shows them. One
 * the policy dropped, or that could not be made safe, is not shown.
 */
export class PublishObservations implements PublishObserver {
  private readonly queue: Array<{ message: OutgoingPublish, packet: PublishPacket }> = []
  /** Aedes disconnects a client whose publish its `published` hook failed. */
  private readonly failed = (error?: Error | null): void => {
    if (error != null) this.client?.close()
  }

  constructor (private readonly client: Client | null, private readonly observers: PublishObservers) {}

  /** `packet` is what the observers are shown: the publisher's own packet, as Aedes shows it. */
  expect (message: OutgoingPublish, packet: PublishPacket): void {
    message.observer = this
    this.queue.push({ message, packet })
  }

  settled (): void {
    const { queue } = this
    while (queue.length > 0 && queue[0]!.message.acknowledged) {
      const { message, packet } = queue.shift()!
      if (!message.dropped && !message.failed) this.observers.observe(packet, this.client, this.failed)
    }
  }
}
