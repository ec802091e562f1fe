import type { Readable } from 'node:stream'

/**
 * Reads the MQTT fixed header of every packet as the bytes pass and drops the
 * connection when a packet announces more than `maxPacketSize` bytes: Aedes
 * would otherwise buffer a hostile 256 MB packet before parsing it. Chunks are
 * passed through untouched; only header bytes are looked at.
 */
export class PacketSizeScanner {
  /** Bytes of the current packet's body still to pass. */
  private skip = 0
  /** Position within a fixed header: 0 = expecting the type byte, 1..4 = length bytes. */
  private headerByte = 0
  private length = 0
  private multiplier = 1

  /**
   * @param maxPacketSize 0 = no limit
   * @param onFirstPacket called once, when the first packet (a terminal's CONNECT [MQTT-3.1.0-1]) has passed whole
   */
  constructor (private readonly maxPacketSize: number, private onFirstPacket?: () => void) {}

  /** Returns an error message when the chunk crosses the limit or breaks the length encoding. */
  scan (chunk: Buffer): string | undefined {
    let i = 0
    while (i < chunk.length) {
      if (this.skip > 0) {
        const step = Math.min(this.skip, chunk.length - i)
        this.skip -= step
        i += step
        if (this.skip === 0) this.packetEnded()
        continue
      }
      const byte = chunk[i++]!
      if (this.headerByte === 0) {
        this.headerByte = 1
        this.length = 0
        this.multiplier = 1
        continue
      }
      // [MQTT-2.2.3]: remaining length, 7 bits per byte, at most 4 bytes.
      this.length += (byte & 0x7f) * this.multiplier
      this.multiplier *= 128
      if ((byte & 0x80) !== 0) {
        if (++this.headerByte > 4) return 'malformed remaining length'
        continue
      }
      const size = 1 + this.headerByte + this.length
      if (this.maxPacketSize > 0 && size > this.maxPacketSize) return `packet of ${size} bytes exceeds limits.maxPacketSize (${this.maxPacketSize})`
      this.skip = this.length
      this.headerByte = 0
      if (this.skip === 0) this.packetEnded()
    }
    return undefined
  }

  private packetEnded (): void {
    if (this.onFirstPacket === undefined) return
    const first = this.onFirstPacket
    this.onFirstPacket = undefined
    first()
  }
}

/**
 * Checks every packet's size as Aedes reads the socket. Aedes pulls bytes
 * with `conn.read()` on 'readable', so the check sits in this socket's `read`
 * (own property, one per connection) rather than in a stream wrapped around
 * it: a wrapper would cost every terminal a second stream's buffers and every
 * chunk a second pass through the stream machinery, both ways.
 */
export function guardPacketSize<S extends Readable> (socket: S, maxPacketSize: number, onReject: (reason: string) => void, onFirstPacket?: () => void): S {
  const scanner = new PacketSizeScanner(maxPacketSize, onFirstPacket)
  const read = socket.read
  socket.read = function guardedRead (this: S, size?: number) {
    const chunk: unknown = read.call(this, size)
    if (!Buffer.isBuffer(chunk)) return chunk
    const rejected = scanner.scan(chunk)
    if (rejected === undefined) return chunk
    onReject(rejected)
    this.destroy()
    return null
  }
  return socket
}
