/** What the keepalive wheel needs from a connection. */
export interface KeepaliveTarget {
  /** Seconds; 0 = no keepalive. */
  readonly keepalive: number
  readonly lastWriteAt: number
  readonly lastReadAt: number
  /** When the PINGREQ still unanswered was sent, else 0. */
  pingSentAt: number
  sendPing(): void
  /** The broker stopped answering: give the connection up. */
  expire(): void
}

const TICK_MS = 500

/**
 * One timer for the keepalives of every upstream connection (two per
 * terminal) instead of a timer each. A connection that has written nothing,
 * or heard nothing, for its keepalive (less one tick, so the ping is never
 * late [MQTT-3.1.2-23]) sends PINGREQ; a PINGREQ unanswered for a whole
 * keepalive means the broker is gone.
 */
class KeepaliveWheel {
  private readonly targets = new Set<KeepaliveTarget>()
  private timer: NodeJS.Timeout | undefined

  add (target: KeepaliveTarget): void {
    if (target.keepalive === 0) return
    this.targets.add(target)
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref()
  }

  delete (target: KeepaliveTarget): void {
    if (!this.targets.delete(target) || this.targets.size > 0) return
    clearInterval(this.timer)
    this.timer = undefined
  }

  private tick (): void {
    const now = performance.now()
    for (const target of this.targets) {
      const keepaliveMs = target.keepalive * 1000
      if (target.pingSentAt !== 0) {
        if (now - target.pingSentAt >= keepaliveMs) target.expire()
      } else if (now - target.lastWriteAt >= keepaliveMs - TICK_MS || now - target.lastReadAt >= keepaliveMs - TICK_MS) {
        target.pingSentAt = now
        target.sendPing()
      }
    }
  }
}

export const keepalives = new KeepaliveWheel()
