/**
 * CONNECT, step 1 of the method: the terminal's connection is opened at
 * Broker1 and Broker2 before it gets its CONNACK.
 */
import {
  type AuthenticateHook, type Client, type ConnectPacket, endAsPersistentSession, hideSessionFromAedes, interceptTerminalAcks, type PreConnectHook, readPacketsDirectly,
  reportSessionPresent
} from '../aedes/internals.js'
import { ConnectRefusedError } from '../errors.js'
import { onTerminalAck } from './ack.js'
import type { TerminalSession } from '../terminal/session.js'
import type { ConnectOutcome, TerminalIdentity } from '../upstream/upstream-link.js'
import { endWithSocket } from './disconnect.js'
import type { ConnectPorts } from './ports.js'

const IDENTIFIER_REJECTED = 2 // MQTT 3.1.1 §3.2.2.3, Table 3.1: return code 2
const SERVER_UNAVAILABLE = 3 // MQTT 3.1.1 §3.2.2.3, Table 3.1: return code 3, the service is unavailable

/**
 * `preConnect` and `authenticate` of one tier: the terminal's own CONNECT, as
 * `preConnect` saw it, goes upstream; Aedes sees a clean session without a
 * will (src/aedes/internals.ts, `hideSessionFromAedes`).
 */
export function connectHandlers (ports: ConnectPorts): { preConnect: PreConnectHook, authenticate: AuthenticateHook } {
  const identities = new WeakMap<Client, TerminalIdentity>()
  return { preConnect: preConnect(ports, identities), authenticate: authenticate(ports, identities) }
}

function preConnect ({ sessions, caps }: ConnectPorts, identities: WeakMap<Client, TerminalIdentity>): PreConnectHook {
  const terminalAck = onTerminalAck(sessions)
  return (client, packet, callback) => {
    const identity = identityOf(packet)
    identities.set(client, identity)
    hideSessionFromAedes(packet)
    if (!identity.clean) endAsPersistentSession(client)
    caps.watch(client) // limits.maxFiltersPerSubscribe (src/limits/terminal-caps.ts)
    interceptTerminalAcks(client, terminalAck) // PUBACK, PUBREC, PUBREL, PUBCOMP: src/handlers/ack.ts
    readPacketsDirectly(client)
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

function authenticate (ports: ConnectPorts, identities: WeakMap<Client, TerminalIdentity>): AuthenticateHook {
  const { sessions, caps } = ports
  return (client, _username, _password, done) => {
    const identity = identities.get(client)
    if (identity === undefined) return done(refusal(SERVER_UNAVAILABLE), false)
    identities.delete(client)
    // [MQTT-3.1.3-8]: a persistent session needs an id to be found by (Aedes would invent one).
    if (identity.clientId === '' && !identity.clean) return done(refusal(IDENTIFIER_REJECTED), false)
    if (caps.refusesClientId(client)) return done(refusal(IDENTIFIER_REJECTED), false) // limits.maxClientIdLength
    // Aedes assigns an id to a clean client that sent none; the brokers must see the same one.
    const session = ports.newSession(client, { ...identity, clientId: client.id })
    let previous: TerminalSession | undefined
    sessions.prepareTakeover(client.id).then((yielded) => {
      previous = yielded
      return session.open()
    }).then((outcomes) => {
      // The tier may have begun to close while the brokers answered: its shutdown did not see this session.
      const returnCode = ports.closing() ? SERVER_UNAVAILABLE : decide(outcomes)
      if (returnCode === SERVER_UNAVAILABLE) caps.noteUnavailable(client, outcomes) // EMFILE upstream: src/limits/
      if (returnCode !== 0 || client.closed) {
        void session.close(true)
        previous?.resumeAfterTakeover()
        if (returnCode === 0) return done(null, false)
        const outOfPorts = returnCode === SERVER_UNAVAILABLE ? sourcePortsLacking(outcomes) : undefined
        if (outOfPorts !== undefined) ports.refusedForSourcePorts(client.id, outOfPorts)
        return done(refusal(returnCode, outOfPorts), false)
      }
      sessions.register(session)
      const present = sessionPresent(outcomes)
      session.reported(present)
      session.catchUp()
      endWithSocket(sessions, client) // a close before Aedes registers the client: src/handlers/disconnect.ts
      if (present) reportSessionPresent(client)
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

/**
 * [MQTT-3.2.2-2]: session present 1 only where every broker that answered kept the session, so
 * that it exists at the one that will deliver to the terminal (Broker1 while it is up). A broker
 * that lost it makes it 0: the terminal subscribes again, and both sessions are whole. A
 * degraded CONNECT (one broker unreachable) reports what the other said; the missing one is
 * checked when it is back (TerminalSession.bringInLine).
 */
export function sessionPresent (outcomes: readonly ConnectOutcome[]): boolean {
  let present = false
  for (const outcome of outcomes) {
    if (outcome.kind !== 'accepted') continue
    if (!outcome.sessionPresent) return false
    present = true
  }
  return present
}

/** The reasons, when a broker's socket could not be opened for want of a source port. */
function sourcePortsLacking (outcomes: readonly ConnectOutcome[]): string | undefined {
  const reasons = outcomes.flatMap((outcome) => outcome.kind === 'unreachable' && outcome.sourcePorts === true ? [outcome.reason] : [])
  return reasons.length === 0 ? undefined : reasons.join('; ')
}

function refusal (returnCode: number, sourcePorts?: string): ConnectRefusedError {
  const message = sourcePorts === undefined
    ? `connection refused upstream (return code ${returnCode})`
    : `${sourcePorts}: no upstream socket could be opened (add source addresses: broker*.localAddresses)`
  return new ConnectRefusedError(returnCode, message)
}

