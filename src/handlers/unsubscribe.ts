/**
 * UNSUBSCRIBE, step 3 of the method: Aedes acks locally (it has no hook that
 * could hold the UNSUBACK), and the unsubscribe follows at both brokers at once.
 */
import type { Client } from '../aedes/internals.js'
import { isLocalTopic } from '../local-topics.js'
import type { SessionRegistry } from '../terminal/registry.js'

export function onUnsubscribe (sessions: SessionRegistry): (topics: string[], client: Client) => void {
  return (topics, client) => {
    // Aedes also emits 'unsubscribe' while closing a clean client: the brokers end that session themselves.
    if (client.closed) return
    const session = sessions.get(client)
    if (session === undefined) return
    const upstream = topics.filter((topic) => !isLocalTopic(topic))
    for (const topic of upstream) session.subscriptions.delete(topic)
    if (upstream.length > 0) for (const link of session.links) link.unsubscribe(upstream)
  }
}
