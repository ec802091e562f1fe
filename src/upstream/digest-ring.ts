/**
 * A 62-bit digest of a message, in two numbers: `key` (30 bits, a small
 * integer V8 keeps unboxed) and `check` (32 bits). Two different messages
 * share both with a chance of about 2^-62: far below any other way a message
 * can be lost. Not cryptographic, and needs none: the brokers are trusted.
 */
export interface Digest { key: number, check: number }

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
const MIX = 0x5bd1e995

/** Digest of (`kind`, `text`, `bytes`): kind keeps ids and topic+payload digests apart. */
export function digest (out: Digest, kind: number, text: string, bytes?: Uint8Array): Digest {
  let a = Math.imul(FNV_OFFSET ^ kind, FNV_PRIME) // FNV-1a
  let b = Math.imul(kind + 1, MIX) // a multiply-xorshift mix, independent of the first
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, FNV_PRIME)
    b = Math.imul(b ^ c, MIX)
    b ^= b >>> 15
  }
  if (bytes !== undefined) {
    // A separator outside the byte range: ("ab", "c") differs from ("a", "bc").
    a = Math.imul(a ^ 0x100, FNV_PRIME)
    b = Math.imul(b ^ 0x100, MIX)
    b ^= b >>> 15
    for (let i = 0; i < bytes.length; i++) {
      a = Math.imul(a ^ bytes[i]!, FNV_PRIME)
      b = Math.imul(b ^ bytes[i]!, MIX)
      b ^= b >>> 15
    }
  }
  out.key = a & 0x3fffffff
  out.check = b | 0
  return out
}

/**
 * Up to `capacity` digests with what the deduplicator keeps per message (when,
 * from which broker, copies still unmatched), oldest evicted first. Typed
 * arrays and small-integer keys: remembering a message allocates nothing, so
 * the window never turns into old-generation garbage; the arrays grow from 16
 * entries as needed, so an idle terminal costs next to nothing.
 */
export class DigestRing {
  private readonly index = new Map<number, number>()
  private keys = new Int32Array(0)
  private checks = new Int32Array(0)
  private at = new Float64Array(0)
  private from = new Uint8Array(0)
  private unmatched = new Int32Array(0)
  private next = 0
  private size = 0

  constructor (private readonly capacity: number) {}

  /** The slot holding `digest`, or -1. */
  find ({ key, check }: Digest): number {
    const slot = this.index.get(key)
    return slot !== undefined && this.checks[slot] === check ? slot : -1
  }

  add ({ key, check }: Digest, at: number, from: number): void {
    if (this.size === this.keys.length && this.size < this.capacity) this.grow()
    const slot = this.next
    if (this.size === this.keys.length) { // full: the oldest goes
      if (this.index.get(this.keys[slot]!) === slot) this.index.delete(this.keys[slot]!)
    } else {
      this.size++
    }
    this.keys[slot] = key
    this.checks[slot] = check
    this.at[slot] = at
    this.from[slot] = from
    this.unmatched[slot] = 1
    this.index.set(key, slot)
    this.next = (slot + 1) % this.keys.length
  }

  atOf (slot: number): number { return this.at[slot]! }
  fromOf (slot: number): number { return this.from[slot]! }
  unmatchedOf (slot: number): number { return this.unmatched[slot]! }

  /** A copy from the other broker matched one arrival of this slot's message. */
  matched (slot: number): void { this.unmatched[slot]!-- }

  /** The same message again from the same broker (a repeated value): one more to match. */
  repeated (slot: number, at: number): void {
    this.unmatched[slot]!++
    this.at[slot] = at
  }

  private grow (): void {
    const length = Math.min(this.capacity, Math.max(16, this.keys.length * 2))
    // Slots are in ring order from `next` when full; copying in that order keeps oldest-first.
    const order = Array.from({ length: this.size }, (_, i) => (this.next + i) % Math.max(1, this.keys.length))
    const grown = <T extends Int32Array | Float64Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const array = make(length)
      order.forEach((slot, i) => { array[i] = old[slot]! })
      return array
    }
    this.keys = grown(this.keys, (n) => new Int32Array(n))
    this.checks = grown(this.checks, (n) => new Int32Array(n))
    this.at = grown(this.at, (n) => new Float64Array(n))
    this.from = grown(this.from, (n) => new Uint8Array(n))
    this.unmatched = grown(this.unmatched, (n) => new Int32Array(n))
    this.index.clear()
    for (let i = 0; i < this.size; i++) this.index.set(this.keys[i]!, i)
    this.next = this.size
  }
}
