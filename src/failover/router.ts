import type { TierMode } from '../events.js'
import type { UpstreamLink } from '../upstream/upstream-link.js'
import type { Policy } from './policy.js'

/**
 * Where one terminal publish goes (DESIGN §3):
 * - `live`: sent on the terminal's own session at that broker; acked when the broker acks.
 * - `store`: committed to the pending store, replayed to Broker1 (or, `anyBroker`, to the first broker back).
 * - `both`: sent live to Broker2 and stored for Broker1.
 * - `wait`: held in memory, unacknowledged, until a session comes online (no store, or the
 *   terminal's own Broker1 session is reconnecting while Broker1 is up).
 * - `drop`: discarded by policy, counted.
 */
export type Route =
  | { kind: 'live', link: UpstreamLink }
  | { kind: 'store', anyBroker: boolean }
  | { kind: 'both', link: UpstreamLink }
  | { kind: 'wait' }
  | { kind: 'drop' }

const WAIT: Route = { kind: 'wait' }
const DROP: Route = { kind: 'drop' }
const STORE: Route = { kind: 'store', anyBroker: false }
const STORE_ANY: Route = { kind: 'store', anyBroker: true }

/**
 * The routing decision, in one place. `links[0]` is the terminal's session at
 * Broker1, `links[1]` at Broker2. While a backlog is replaying, everything for
 * Broker1 goes behind it into the store, so Broker1 sees the accepted order.
 */
export function route (policy: Policy, mode: TierMode, links: readonly UpstreamLink[], hasStore: boolean): Route {
  const [primary, standby] = links as [UpstreamLink, UpstreamLink]
  if (mode === 'normal') {
    if (primary.online) return { kind: 'live', link: primary }
    return WAIT
  }
  if (mode === 'replaying') return hasStore ? STORE : WAIT
  switch (policy.mode) {
    case 'drop': return DROP
    case 'failover':
      if (standby.online) return { kind: 'live', link: standby }
      return hasStore ? STORE_ANY : WAIT
    case 'queue': return hasStore ? STORE : WAIT
    case 'both':
      if (standby.online) return hasStore ? { kind: 'both', link: standby } : { kind: 'live', link: standby }
      return hasStore ? STORE : WAIT
  }
}
