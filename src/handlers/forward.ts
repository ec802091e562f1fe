/**
 * Aedes' own deliveries to a terminal: the tier writes every message the
 * brokers send, so what Aedes would deliver itself can only be local — the
 * tier's status topics — or a leak: its per-client `$SYS/<id>/new/clients`
 * and `new/subscribes` announcements, which no broker ACL covers, or its
 * retained `$SYS/dual-broker/` topics matched by a filter that starts with a
 * wildcard, which no `$` topic may match [MQTT-4.7.2-1]. The instance's own
 * `authorizeForward` sees what passes (src/aedes/hooks.ts).
 */
import { Qlobber } from 'qlobber'
import { type AuthorizeForwardHook, type Client, filtersOf } from '../aedes/internals.js'
import { isLocalTopic } from '../local-topics.js'

const DOLLAR = 36 // '$'

export const authorizeForward: AuthorizeForwardHook = (client, packet) => {
  return isLocalTopic(packet.topic) && subscribedToDollarTopic(client, packet.topic) ? packet : null
}

/** One of the terminal's own filters that begins with `$` matches the topic. */
function subscribedToDollarTopic (client: Client, topic: string): boolean {
  const filters = filtersOf(client).filter((filter) => filter.charCodeAt(0) === DOLLAR)
  if (filters.length === 0) return false
  const matcher = new Qlobber<true>({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
  for (const filter of filters) matcher.add(filter, true)
  return matcher.match(topic).length > 0
}
