/**
 * SUBSCRIBE, step 2 of the method: each topic is subscribed at both brokers
 * and the terminal's SUBACK waits for both SUBACKs.
 */
import type { AuthorizeSubscribeHook } from '../aedes/internals.js'
import { isLocalTopic } from '../local-topics.js'
import { FAILURE, type Qos } from '../mqtt/protocol.js'
import type { TerminalSession } from '../terminal/session.js'
import type { SubscribePorts } from './ports.js'

export function authorizeSubscribe ({ sessions, caps }: SubscribePorts): AuthorizeSubscribeHook {
  return (client, subscription, callback) => {
    const session = sessions.get(client)
    if (caps.refusesSubscription(client, subscription, session?.subscriptions)) return callback(null, null) // src/limits/terminal-caps.ts
    if (session === undefined || isLocalTopic(subscription.topic)) return callback(null, subscription)
    mirror(session, subscription.topic, subscription.qos).then((granted) => {
      // Aedes keeps the requested QoS in its SUBACK (docs/ARCHITECTURE.md); the brokers deliver at the granted one.
      callback(null, granted === FAILURE ? null : { ...subscription, qos: granted as Qos })
    }, (error: Error) => callback(error))
  }
}

/**
 * Granted QoS is the lowest the reachable brokers granted: each broker
 * delivers at no more than its own grant [MQTT-3.8.4-6]. A broker that
 * refuses makes it a failure (0x80, [MQTT-3.9.3-2]), and the other broker's grant is
 * withdrawn so the terminal receives nothing it was told it is not subscribed
 * to. A broker that is unreachable now gets the subscription when it is back.
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
