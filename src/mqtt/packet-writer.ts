import type { Duplex } from 'node:stream'

/**
 * The packets of one event-loop turn leave in one socket write: a write per packet
 * costs a trip through the stream machinery each, and with corking still an
 * entry each in the stream's buffer. Items handed in with a packet (QoS 0
 * publishes) are reported once the socket has taken it without buffering past
 * its high-water mark, or on 'drain': backpressure without a callback per packet.
 */
export class PacketWriter<Item> {
  lastWriteAt = performance.now()
  private packets: Buffer[] = []
  private items: Item[] = []
  private waiting: Item[] = []

  constructor (private readonly socket: Duplex, private readonly report: (item: Item) => void) {
    socket.on('drain', () => this.reportWaiting())
  }

  write (packet: Buffer, item?: Item): void {
    this.lastWriteAt = performance.now()
    if (this.packets.length === 0) setImmediate(flush, this)
    this.packets.push(packet)
    if (item !== undefined) this.items.push(item)
  }

  flush (): void {
    const { packets, items } = this
    if (packets.length === 0) return
    this.packets = []
    this.items = []
    const taken = this.socket.write(packets.length === 1 ? packets[0]! : Buffer.concat(packets))
    if (taken) for (const item of items) this.report(item)
    else for (const item of items) this.waiting.push(item)
  }

  /** The connection is gone: what waited is reported too (QoS 0 is at most once). */
  release (): void {
    this.flush()
    this.reportWaiting()
  }

  private reportWaiting (): void {
    const waiting = this.waiting
    this.waiting = []
    for (const item of waiting) this.report(item)
  }
}

function flush (writer: { flush: () => void }): void {
  writer.flush()
}

/**
 * The writes of one event-loop turn leave in one syscall instead of one each:
 * uncorked from an immediate (queued from a nextTick, so after the immediates
 * that the current callback queued, which is where Aedes writes deliveries).
 * An immediate never waits for I/O: the loop does not block while one is due.
 */
export function corkForTurn (stream: Corkable): void {
  if (stream.writableCorked !== 0) return
  stream.cork()
  process.nextTick(uncorkAfterImmediates, stream)
}

interface Corkable { cork: () => void, uncork: () => void, writableCorked: number }

/**
 * Resolves once what was written to `stream` left it: the turn `corkForTurn`
 * held it for is over, and the stream's own buffer drained (or it closed).
 * A node that stops must not destroy a socket before its last acks left.
 */
export async function written (stream: Duplex): Promise<void> {
  while (stream.writableCorked > 0 && !stream.destroyed) await new Promise((resolve) => setImmediate(resolve))
  if (stream.destroyed || stream.writableLength === 0) return
  await new Promise((resolve) => {
    stream.once('drain', resolve)
    stream.once('close', resolve)
  })
}

function uncorkAfterImmediates (stream: Corkable): void {
  setImmediate(uncork, stream)
}

function uncork (stream: Corkable): void {
  stream.uncork()
}
