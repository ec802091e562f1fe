import type { DroppedEvent } from './types.js'

/** Counts removed entries and remembers their topic while it is the same for all. */
export class Tally {
  count = 0
  private topic: string | undefined
  private mixed = false

  add (topic: string): void {
    if (this.count++ === 0) this.topic = topic
    else if (topic !== this.topic) this.mixed = true
  }

  event (reason: DroppedEvent['reason']): DroppedEvent {
    const event: DroppedEvent = { reason, count: this.count }
    if (!this.mixed && this.topic !== undefined) event.topic = this.topic
    return event
  }
}
