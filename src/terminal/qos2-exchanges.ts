import type { Callback } from '../aedes/internals.js'

/** One QoS 2 publish of the terminal, from its PUBLISH until its PUBREL. */
class Exchange {
  safe = false
  readonly waiting: Callback[] = []
}

/**
 * A terminal's QoS 2 publishes by packet identifier, until the terminal's
 * PUBREL: a PUBLISH resent under an identifier still here — DUP on the same
 * connection, or after a reconnect of a persistent session — is answered
 * with PUBREC again and goes nowhere [MQTT-4.3.3-2]. Kept per client id, so a
 * persistent terminal's exchanges outlive its connection on this node.
 */
export class Qos2Exchanges {
  /** Made on the first QoS 2 publish: most terminals publish at QoS 0 or 1. */
  private byIdMap: Map<number, Exchange> | undefined

  private get byId (): Map<number, Exchange> {
    this.byIdMap ??= new Map()
    return this.byIdMap
  }

  /**
   * A QoS 2 PUBLISH: returns the callback that acknowledges it once it is safe,
   * or undefined for a resend, which `done` answers once the first one is safe.
   */
  begin (messageId: number, done: Callback): Callback | undefined {
    const known = this.byId.get(messageId)
    if (known !== undefined) {
      if (known.safe) done()
      else known.waiting.push(done)
      return undefined
    }
    const exchange = new Exchange()
    this.byId.set(messageId, exchange)
    return (error) => {
      if (error != null) {
        this.byId.delete(messageId) // not safe: the terminal resends, and that one counts
        done(error)
        for (const waiter of exchange.waiting.splice(0)) waiter(error)
        return
      }
      exchange.safe = true
      done()
      for (const waiter of exchange.waiting.splice(0)) waiter()
    }
  }

  /** The terminal's PUBREL: the identifier may carry a new message from now on. */
  released (messageId: number): void {
    this.byIdMap?.delete(messageId)
  }

  get size (): number {
    return this.byIdMap?.size ?? 0
  }
}
