/**
 * Admits at most `perSecond` new connections per second (a token bucket that
 * refills continuously, bursts up to one second's worth). 0 = unlimited.
 */
export class ConnectionRate {
  private tokens: number
  private last = Date.now()

  constructor (private readonly perSecond: number) {
    this.tokens = perSecond
  }

  admit (): boolean {
    if (this.perSecond <= 0) return true
    const now = Date.now()
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }
}
