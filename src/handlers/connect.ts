/**
 * CONNECT, step 1 of the method: the terminal's connection is opened at
 * Broker1 and Broker2 before it gets its CONNACK.
 */
import { type AuthenticateHook, type Client, type ConnectPacket, interceptTerminalAcks, type PreConnectHook, reportSessionPresent } from '../aedes-types.js'
import type { DualBroker } from '../plugin.js'
import { endWithSocket } from './disconnect.js'
import type { ConnectOutcome, TerminalIdentity } from '../upstream/upstream-link.js'
import { TerminalSession } from '../upstream/terminal-session.js'

const IDENTIFIER_REJECTED = 2 // MQTT 3.1.1 §3.2.2.3, return code 2
const SERVER_UNAVAILABLE = 3 // MQTT 3.1.1 §3.2.2.3, return code 3: the service is unavailable

/**
 * The brokers hold the terminal's session, its will included (so that exactly
 * one will is ever published): Aedes gets a CONNECT without a will and with
 * clean session set, so that it keeps, restores and re-authorizes nothing of
 * the terminal's between connections. The terminal's own flags go upstream.
 */
export function preConnect (tier: DualBroker): PreConnectHook {
  return (client, packet, callback) => {
    tier.connectPackets.set(client, identityOf(packet))
    delete packet.will
    packet.clean = true
    tier.caps.watch(client) // limits.maxFiltersPerSubscribe (src/limits/terminal-caps.ts)
    interceptTerminalAcks(client, (ack) => tier.sessions.get(client)?.acked(ack) === true)
    callback(null, true)
  }
}

function identityOf (packet: ConnectPacket): TerminalIdentity {
  const will = packet.will
  return {
    clientId: packet.clientId,
    clean: packet.clean !== false,
    keepalive: packet.keepalive ?? 0,
    ...(packet.username !== undefined && { username: packet.username }),
    ...(packet.password !== undefined && { password: packet.password }),
    ...(will != null && {
      will: { topic: will.topic, payload: Buffer.from(will.payload), qos: will.qos ?? 0, retain: will.retain === true }
    })
  }
}

export function authenticate (tier: DualBroker): AuthenticateHook {
  return (client, _username, _password, done) => {
    const identity = tier.connectPackets.get(client)
    if (identity === undefined) return done(refusal(SERVER_UNAVAILABLE), false)
    tier.connectPackets.delete(client)
    // [MQTT-3.1.3-8]: a persistent session needs an id to be found by (Aedes would invent one).
    if (identity.clientId === '' && !identity.clean) return done(refusal(IDENTIFIER_REJECTED), false)
    if (tier.caps.refusesClientId(client)) return done(refusal(IDENTIFIER_REJECTED), false) // limits.maxClientIdLength
    // Aedes assigns an id to a clean client that sent none; the brokers must see the same one.
    const session = new TerminalSession(client, { ...identity, clientId: client.id }, tier.healths, tier.failover, tier.options.dedup, tier.options.limits.maxInflight, tier.forwardFilter, tier.qos2Exchanges(client.id, identity.clean))
    let previous: TerminalSession | undefined
    tier.prepareTakeover(client.id).then((yielded) => {
      previous = yielded
      return session.open()
    }).then((outcomes) => {
      // The tier may have begun to close while the brokers answered: its shutdown did not see this session.
      const returnCode = tier.isClosing ? SERVER_UNAVAILABLE : decide(outcomes)
      if (returnCode === SERVER_UNAVAILABLE) tier.caps.noteUnavailable(client, outcomes) // EMFILE upstream: src/limits/
      if (returnCode !== 0 || client.closed) {
        void session.close(true)
        previous?.resumeAfterTakeover()
        if (returnCode === 0) return done(null, false)
        const outOfPorts = returnCode === SERVER_UNAVAILABLE ? sourcePortsLacking(outcomes) : undefined
        if (outOfPorts !== undefined) tier.refusedForSourcePorts(client.id, outOfPorts)
        return done(refusal(returnCode, outOfPorts), false)
      }
      tier.register(session)
      session.catchUp()
      endWithSocket(tier, client) // a close before Aedes registers the client: src/handlers/disconnect.ts
      // [MQTT-3.2.2-2]: present if a broker kept the session (both do, unless one lost it)
      if (outcomes.some((outcome) => outcome.kind === 'accepted' && outcome.sessionPresent)) reportSessionPresent(client)
      done(null, true)
    }, (error: Error) => {
      void session.close(true)
      done(error, false)
    })
  }
}

/**
 * Both brokers accepted, or one accepted while the other is unreachable
 * (degraded; it is brought in line when back): accepted. A reachable broker
 * that refuses decides the code (auth pass-through), Broker1's first.
 */
export function decide (outcomes: readonly ConnectOutcome[]): number {
  for (const outcome of outcomes) if (outcome.kind === 'refused') return outcome.returnCode
  return outcomes.some((outcome) => outcome.kind === 'accepted') ? 0 : SERVER_UNAVAILABLE
}

/** The reasons, when a broker's socket could not be opened for want of a source port. */
function sourcePortsLacking (outcomes: readonly ConnectOutcome[]): string | undefined {
  const reasons = outcomes.flatMap((outcome) => outcome.kind === 'unreachable' && outcome.sourcePorts === true ? [outcome.reason] : [])
  return reasons.length === 0 ? undefined : reasons.join('; ')
}

function refusal (returnCode: number, sourcePorts?: string): Error & { returnCode: number } {
  const message = sourcePorts === undefined
    ? `connection refused upstream (return code ${returnCode})`
    : `${sourcePorts}: no upstream socket could be opened (add source addresses: broker*.localAddresses)`
  return Object.assign(new Error(message), { returnCode })
}

export type { Client }
