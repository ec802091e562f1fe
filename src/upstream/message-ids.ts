import { randomBytes } from 'node:crypto'

/** Ids unique to this tier instance: a random prefix and a counter, compact on the wire. */
export class MessageIds {
  private readonly prefix = `${randomBytes(6).toString('base64url')}.`
  private counter = 0

  next (): string {
    return this.prefix + (this.counter++).toString(36)
  }
}
