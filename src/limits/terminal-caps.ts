/**
 * Caps on what one terminal may make the tier hold: client id and topic
 * lengths, filters per SUBSCRIBE and subscriptions in all. Each is far above
 * what a device sends and keeps a hostile terminal's cost bounded (README,
 * "Reliability and security"). A refusal is counted and logged by reason.
 */
import { type Client, interceptPackets, type PacketListener, type Subscription } from '../aedes/internals.js'
import type { Logger } from '../logger.js'
import { isFdExhaustion } from './fd-budget.js'
import { clip, type RefusalCounts, Refusals } from './refusals.js'

export interface CapOptions {
  maxFiltersPerSubscribe: number
  maxSubscriptionsPerTerminal: number
  maxTopicLength: number
  maxClientIdLength: number
}

/** The part of a terminal's subscriptions a cap needs to see. */
export interface Subscribed {
  readonly size: number
  has: (topic: string) => boolean
}

export class TerminalCaps {
  readonly refusals: Refusals
  /** Filters past `maxFiltersPerSubscribe` in their SUBSCRIBE: each gets 0x80. */
  private readonly excess = new WeakSet<Subscription>()
  private readonly wrappers = new WeakMap<PacketListener, PacketListener>()

  constructor (private readonly options: CapOptions, counts: RefusalCounts, logger: Logger) {
    this.refusals = new Refusals(counts, logger)
  }

  /** From CONNECT on, SUBSCRIBE packets of this client are checked before Aedes handles them. */
  watch (client: Client): void {
    const max = this.options.maxFiltersPerSubscribe
    if (max <= 0) return
    interceptPackets(client, (original) => {
      let wrapper = this.wrappers.get(original)
      if (wrapper === undefined) {
        const excess = this.excess
        wrapper = function checked (this: unknown, packet) {
          const filters = packet.subscriptions
          if (packet.cmd === 'subscribe' && filters !== undefined && filters.length > max) {
            for (let i = max; i < filters.length; i++) excess.add(filters[i]!)
          }
          original.call(this, packet)
        }
        this.wrappers.set(original, wrapper)
      }
      return wrapper
    })
  }

  /** True when the client id is too long: the CONNECT is refused with return code 2 [MQTT-3.1.3-9]. */
  refusesClientId (client: Client): boolean {
    if (!longerThan(client.id, this.options.maxClientIdLength)) return false
    this.refusals.refuse('client-id-length', { remote: remoteOf(client), clientId: clip(client.id), bytes: Buffer.byteLength(client.id) })
    return true
  }

  /** True when this filter must get 0x80 [MQTT-3.9.3-2]; `subscribed` is what the terminal holds now. */
  refusesSubscription (client: Client, subscription: Subscription, subscribed: Subscribed | undefined): boolean {
    const topic = subscription.topic
    if (this.excess.has(subscription)) {
      this.refusals.refuse('filters-per-subscribe', { clientId: clip(client.id), topic: clip(topic) })
      return true
    }
    if (longerThan(topic, this.options.maxTopicLength)) {
      this.refusals.refuse('topic-length', { clientId: clip(client.id), topic: clip(topic), bytes: Buffer.byteLength(topic) })
      return true
    }
    const max = this.options.maxSubscriptionsPerTerminal
    if (max > 0 && subscribed !== undefined && subscribed.size >= max && !subscribed.has(topic)) {
      this.refusals.refuse('subscriptions-per-terminal', { clientId: clip(client.id), topic: clip(topic), subscriptions: subscribed.size })
      return true
    }
    return false
  }

  /**
   * True when a PUBLISH topic is too long. MQTT 3.1.1 has no refusal for a
   * PUBLISH but closing the connection, so the caller closes it.
   */
  refusesTopic (client: Client, topic: string): boolean {
    if (!longerThan(topic, this.options.maxTopicLength)) return false
    this.refusals.refuse('topic-length', { clientId: clip(client.id), topic: clip(topic), bytes: Buffer.byteLength(topic) })
    return true
  }

  /** A CONNECT refused with return code 3 because its upstream sockets found no descriptor left is counted as such. */
  noteUnavailable (client: Client, outcomes: ReadonlyArray<{ kind: string, reason?: string }>): void {
    if (!outcomes.some((outcome) => outcome.kind === 'unreachable' && isFdExhaustion(outcome.reason))) return
    this.refusals.refuse('fd-limit', { remote: remoteOf(client), clientId: clip(client.id) })
  }

  close (): void {
    this.refusals.close()
  }
}

/**
 * Whether `text` is more than `max` bytes of UTF-8 (0 = no limit). A UTF-16
 * unit is 1 to 3 bytes (a surrogate pair 4 for 2 units), so the length alone
 * decides most cases without encoding: this runs for every PUBLISH.
 */
export function longerThan (text: string, max: number): boolean {
  if (max <= 0 || text.length * 3 <= max) return false
  if (text.length > max) return true
  return Buffer.byteLength(text) > max
}

function remoteOf (client: Client): string | undefined {
  return (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress
}
