/**
 * SUBSCRIBE, step 2 of the method: each topic is subscribed at both brokers
 * and the terminal's SUBACK waits for both SUBACKs.
 */
import type { AuthorizeSubscribeHook } from '../aedes-types.js'
import type { DualBroker } from '../plugin.js'
import type { Qos, TerminalSession } from '../upstream/terminal-session.js'

const FAILURE = 128 // [MQTT-3.9.3-2] 0x80: failure

export function authorizeSubscribe (tier: DualBroker): AuthorizeSubscribeHook {
  return (client, subscription, callback) => {
    const session = tier.sessions.get(client)
    if (tier.caps.refusesSubscription(client, subscription, session?.subscriptions)) return callback(null, null) // src/limits/terminal-caps.ts
    if (session === undefined || tier.isLocalTopic(subscription.topic)) return callback(null, subscription)
    mirror(session, subscription.topic, subscription.qos).then((granted) => {
      // Aedes keeps the requested QoS in the SUBACK (AEDES-NOTES); the brokers deliver at the granted one.
      callback(null, granted === FAILURE ? null : { ...subscription, qos: granted as Qos })
    }, (error: Error) => callback(error))
  }
}

/**
 * Granted QoS is the lowest the reachable brokers granted. A broker that
 * refuses makes it a failure, and the other broker's grant is withdrawn so the
 * terminal receives nothing it was told it is not subscribed to. A broker that
 * is unreachable now gets the subscription when it is back.
 */
async function mirror (session: TerminalSession, topic: string, qos: Qos): Promise<number> {
  session.subscriptions.set(topic, qos)
  const grants = await session.subscribeUpstream(topic, qos)
  let granted: number = qos
  for (const code of grants) {
    if (code !== undefined) granted = code === FAILURE || granted === FAILURE ? FAILURE : Math.min(granted, code)
  }
  if (granted === FAILURE) {
    session.subscriptions.delete(topic)
    for (const link of session.links) link.unsubscribe([topic])
    return FAILURE
  }
  session.links.forEach((link, i) => {
    const code = grants[i]
    if (code !== undefined) link.applied.set(topic, code)
  })
  return granted
}
