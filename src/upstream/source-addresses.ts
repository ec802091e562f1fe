/**
 * The source addresses of one broker's upstream sockets (`broker*.localAddresses`). Linux gives
 * one source address about 28k ephemeral ports towards one broker address, so one node's
 * sessions at a broker are capped there; each address of the pool adds as many. An address is
 * handed out least used first, so that the pool fills evenly as sockets come and go.
 */
export class SourceAddresses {
  private readonly open = new Map<string, number>()

  constructor (addresses: readonly string[]) {
    for (const address of addresses) this.open.set(address, 0)
  }

  take (): string {
    let best: string | undefined
    let fewest = Number.POSITIVE_INFINITY
    for (const [address, count] of this.open) {
      if (count < fewest) [best, fewest] = [address, count]
    }
    this.open.set(best!, fewest + 1)
    return best!
  }

  release (address: string): void {
    const count = this.open.get(address)
    if (count !== undefined && count > 0) this.open.set(address, count - 1)
  }

  /** Sockets open from each address, for tests and diagnostics. */
  get usage (): ReadonlyMap<string, number> {
    return this.open
  }
}

/**
 * A connect that failed for want of a source port: EADDRNOTAVAIL when the kernel picks the
 * address and port, EADDRINUSE when the port is picked for a given source address.
 */
export function isSourcePortError (error: { code?: unknown, syscall?: unknown }): boolean {
  return (error.code === 'EADDRNOTAVAIL' || error.code === 'EADDRINUSE') && (error.syscall === 'connect' || error.syscall === 'bind')
}
