import type { IPublishPacket } from 'mqtt-packet'
import { Qlobber } from 'qlobber'

/** A filter the broker has not answered yet: its copies are recognised, but it is never the chosen one. */
const PENDING = -1
/** What a copy from a filter sent without identifier carries (a filter with no wildcard: see `sent`). */
const NO_IDENTIFIER = 0
/** [MQTT-3.8.2.1.2] identifiers are 1 to 268,435,455; the counter starts over far below, at a wrap no session reaches. */
const MAX_IDENTIFIER = 268_435_455
const DOLLAR = 0x24
const PLUS = 0x2b
const HASH = 0x23

interface Filter {
  /** The broker's grant, or PENDING until its SUBACK. */
  grant: number
  identifier: number
  levels: readonly string[]
  /** UNSUBSCRIBEs of it not answered yet: it goes at the last one's UNSUBACK, unless subscribed again meanwhile. */
  leaving: number
}

function hasWildcard (filter: string): boolean {
  return filter.includes('+') || filter.includes('#')
}

/**
 * One copy per message, as a 3.1.1 session gets it [MQTT-3.3.5-1], from a broker that sends
 * an MQTT 5 session one copy per matching subscription (mosquitto; §3.3.4 allows both).
 *
 * Each wildcard filter is subscribed with a Subscription Identifier of its own, stable while
 * the session holds the filter; a filter without wildcards needs none (it matches one topic,
 * and no other such filter matches that topic). Of the copies of one message, the one kept is
 * the copy a 3.1.1 session of the same broker gets: mosquitto 2.0 sends that session the copy
 * of the first matching subscription in its subscription tree (see `treeOrder`), at that
 * subscription's grant, not the highest grant the clause asks for. Each copy is
 * judged on its own, so nothing is remembered per message: a copy is extra when it came
 * through another filter of this session that matches its topic. A copy whose filter the
 * session does not know (made in an earlier connection, through another node) is kept.
 *
 * Only a session whose filters can overlap pays: one with no wildcard filter, or a single
 * filter, is never asked to match; the matcher of the wildcard filters is built at the first
 * delivery that needs it and kept in step from then on.
 */
export class SingleCopy {
  private readonly filters = new Map<string, Filter>()
  private wildcards = 0
  private matcher: Qlobber<string> | undefined
  private nextIdentifier = 1

  /**
   * The SUBSCRIBE of `filter` is on its way (copies through it may come before its SUBACK):
   * the Subscription Identifier it carries, assigned at the filter's first subscription and
   * kept while the session holds it; undefined for a filter without wildcards.
   */
  sent (filter: string): number | undefined {
    const known = this.filters.get(filter)
    if (known !== undefined) {
      if (known.leaving > 0) {
        // Subscribed again before the UNSUBACK: the broker may hold it again only at this SUBACK.
        known.leaving = 0
        known.grant = PENDING
      }
      return known.identifier === NO_IDENTIFIER ? undefined : known.identifier
    }
    if (!hasWildcard(filter)) {
      this.filters.set(filter, { grant: PENDING, identifier: NO_IDENTIFIER, levels: filter.split('/'), leaving: 0 })
      return undefined
    }
    const identifier = this.nextIdentifier
    this.nextIdentifier = identifier === MAX_IDENTIFIER ? 1 : identifier + 1
    this.filters.set(filter, { grant: PENDING, identifier, levels: filter.split('/'), leaving: 0 })
    this.wildcards++
    this.matcher?.add(filter, filter)
    return identifier
  }

  /** The broker's SUBACK for `filter`: its grant, or `undefined` when it refused it or did not answer. */
  granted (filter: string, grant: number | undefined): void {
    const known = this.filters.get(filter)
    if (known === undefined) return
    if (grant === undefined) this.remove(filter)
    else known.grant = grant
  }

  /** An UNSUBSCRIBE of `filter` is on its way. */
  leaving (filter: string): void {
    const known = this.filters.get(filter)
    if (known !== undefined) known.leaving++
  }

  /** Its UNSUBACK (or the connection's end): the broker sends no more copies through `filter`. */
  left (filter: string): void {
    const known = this.filters.get(filter)
    if (known !== undefined && known.leaving > 0 && --known.leaving === 0) this.remove(filter)
  }

  private remove (filter: string): void {
    if (!this.filters.delete(filter) || !hasWildcard(filter)) return
    this.wildcards--
    this.matcher?.remove(filter)
  }

  /** The broker holds none of the session's filters (a new session there). */
  clear (): void {
    this.filters.clear()
    this.wildcards = 0
    this.matcher = undefined
  }

  /** True for a copy that another copy of the same message stands for. Retained copies are each a subscription's own [MQTT-3.3.1-9]. */
  extra (packet: IPublishPacket): boolean {
    if (this.wildcards === 0 || this.filters.size < 2 || packet.retain) return false
    const { topic } = packet
    const copy = packet.properties?.subscriptionIdentifier ?? NO_IDENTIFIER
    // [MQTT-4.7.2-1] a filter that starts with a wildcard matches no $ topic: it sent no copy.
    const dollar = topic.charCodeAt(0) === DOLLAR
    let kept: Filter | undefined
    let matching = 0
    let ownFilter = false
    const literal = this.filters.get(topic)
    const names = this.matching(topic)
    if (names.length + (literal === undefined ? 0 : 1) < 2) return false
    const levels = topic.split('/')
    for (let i = -1; i < names.length; i++) {
      const filter = i === -1 ? literal : this.wildcardFilter(names[i], dollar)
      if (filter === undefined) continue
      matching++
      if (!ownFilter && carries(copy, filter.identifier)) ownFilter = true
      if (filter.grant === PENDING) continue // not the broker's yet: it may have sent no copy
      if (kept === undefined || treeOrder(filter.levels, kept.levels, levels) < 0) kept = filter
    }
    return matching > 1 && ownFilter && kept !== undefined && !carries(copy, kept.identifier)
  }

  private wildcardFilter (name: string, dollar: boolean): Filter | undefined {
    if (dollar && (name.charCodeAt(0) === PLUS || name.charCodeAt(0) === HASH)) return undefined
    return this.filters.get(name)
  }

  private matching (topic: string): string[] {
    if (this.matcher === undefined) {
      this.matcher = new Qlobber<string>({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
      for (const name of this.filters.keys()) if (hasWildcard(name)) this.matcher.add(name, name)
    }
    return this.matcher.match(topic)
  }
}

/**
 * Which of two filters matching a topic (split into levels) comes first in a broker's
 * subscription tree, searched as mosquitto does: depth first, at each level the topic's own
 * word, then `+`, then `#`; past the topic's last level a `#` (which matches the parent level
 * too, [MQTT-4.7.1-2]) before the filter that ends there. Negative: `a` first.
 */
function treeOrder (a: readonly string[], b: readonly string[], topic: readonly string[]): number {
  for (let i = 0; ; i++) {
    const ra = rank(a[i], i < topic.length)
    const rb = rank(b[i], i < topic.length)
    if (ra !== rb) return ra - rb
    if (a[i] === undefined || a[i] === '#') return 0 // the same filter
  }
}

function rank (level: string | undefined, withinTopic: boolean): number {
  if (withinTopic) return level === '#' ? 2 : level === '+' ? 1 : 0
  return level === '#' ? 0 : 1
}

/** Whether a copy carries `identifier`: a copy has one per filter it was sent for (MQTT 5 §3.3.2.3.8), none from a filter subscribed without. */
function carries (copy: number | number[], identifier: number): boolean {
  return copy === identifier || (Array.isArray(copy) && (copy.includes(identifier) || (copy.length === 0 && identifier === NO_IDENTIFIER)))
}
