/**
 * Backpressure on one terminal's QoS 1 publishes. MQTT 3.1.1 cannot announce
 * a receive window, so past `limit` publishes not yet safe the tier stops
 * releasing Aedes' publish hook: Aedes then stops reading the terminal's
 * socket, and TCP slows the terminal down. Nothing is refused or dropped.
 */
export class InboundFlow {
  private unsafe = 0
  private readonly paused: Array<() => void> = []

  constructor (private readonly limit: number) {}

  /** A publish was accepted: `resume` lets Aedes read on, now or once the terminal is below the limit again. */
  admit (resume: () => void): void {
    if (this.limit > 0 && this.unsafe >= this.limit) this.paused.push(resume)
    else resume()
    this.unsafe++
  }

  /**
   * A publish became safe (or failed). Below the limit, every paused publish is
   * released at once: they were all forwarded already, and Aedes reads on only
   * when every packet of the chunk it read is released.
   */
  settled (): void {
    this.unsafe--
    if (this.paused.length === 0 || this.unsafe >= this.limit) return
    for (const resume of this.paused.splice(0)) resume()
  }
}
