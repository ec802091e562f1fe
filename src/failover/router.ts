import type { UpstreamLink } from '../upstream/upstream-link.js'

/**
 * Where one terminal publish goes. The one place the routing decision is made:
 * `links[0]` is the terminal's session at Broker1, `links[1]` at Broker2.
 * Returns undefined when the message must wait for a broker to come back.
 */
export type Router = (topic: string, links: readonly UpstreamLink[]) => UpstreamLink | undefined

/** Broker1 while the terminal's session there is online, else Broker2. */
export const primaryThenStandby: Router = (_topic, links) => {
  for (const link of links) if (link.online) return link
  return undefined
}
