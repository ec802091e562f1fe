import { randomBytes } from 'node:crypto'

/**
 * Ids unique to this tier instance: a random prefix and a counter, compact on the wire.
 * They are made only while an upstream speaks MQTT 5, which carries them (see Deduplicator):
 * under `protocolVersion: 'auto'` that is known once a broker's health link decided, so the
 * tier sets `active` then, from what was decided rather than what was configured.
 */
export class MessageIds {
  active = false
  private readonly prefix = `${randomBytes(6).toString('base64url')}.`
  private counter = 0

  next (): string | undefined {
    return this.active ? this.prefix + (this.counter++).toString(36) : undefined
  }
}
