/**
 * Everything the tier touches of Aedes 1.x beyond its public typings, each
 * trick behind a named function (docs/ARCHITECTURE.md, "What the adapter
 * relies on in Aedes"). Only src/aedes/ reaches into Aedes' internals; the
 * rest of the tier calls these.
 */
import type { Aedes, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import { DualBrokerError } from '../errors.js'

export type { Aedes, Client, ConnectPacket, PublishPacket, Subscription }

export type Callback = (error?: Error | null) => void

export type PreConnectHook = (client: Client, packet: ConnectPacket, callback: (error: Error | null, ok: boolean) => void) => void
export type AuthenticateHook = (
  client: Client, username: string | undefined, password: Buffer | undefined,
  done: (error: (Error & { returnCode?: number }) | null, ok: boolean | null) => void
) => void
export type AuthorizePublishHook = (client: Client | null, packet: PublishPacket, callback: Callback) => void
export type AuthorizeSubscribeHook = (
  client: Client, subscription: Subscription,
  callback: (error: Error | null, subscription?: Subscription | null) => void
) => void
export type AuthorizeForwardHook = (client: Client, packet: PublishPacket) => PublishPacket | null | undefined
export type BrokerPublish = (packet: PublishPacket, client: Client | null | Callback, done?: Callback) => void

/** The hook properties and undocumented members of an Aedes instance that the plugin composes with. */
export interface AedesHooks {
  preConnect: PreConnectHook
  authenticate: AuthenticateHook
  authorizePublish: AuthorizePublishHook
  authorizeSubscribe: AuthorizeSubscribeHook
  publish: BrokerPublish
  authorizeForward: AuthorizeForwardHook
  closed: boolean
  /** The options Aedes was created with; it reads `drainTimeout` each time it waits for a full socket. */
  opts: { drainTimeout: number }
}

/** Members of an Aedes Client that exist at run time but not in the typings. */
export interface ClientInternals {
  /** Set only when the client sent a DISCONNECT packet. */
  _disconnected?: boolean
  /** Calls back on 'drain'; closes the client when none comes within the broker's drainTimeout. */
  waitForDrain: (callback: () => void) => void
  /** The stream Aedes was handed for this terminal. */
  conn?: object
  /** Aedes reads no further packet from the terminal (client.js `nextBatch`). */
  pause: () => void
}

/**
 * The brokers hold the terminal's session, its will included (so that exactly
 * one will is ever published): Aedes sees a CONNECT without a will and with
 * clean session set, so that it keeps, restores and re-authorizes nothing of
 * the terminal's between connections.
 */
export function hideSessionFromAedes (packet: ConnectPacket): void {
  delete packet.will
  packet.clean = true
}

/**
 * Aedes writes a QoS 1 PUBACK (QoS 2 PUBREC) as soon as `authorizePublish`
 * calls back, and holding the hook would stop it reading the terminal's next
 * packets. Marked QoS 0, the publish gets no ack of Aedes' own: the tier
 * writes it when the message is safe. Aedes reads the QoS right after the hook.
 */
export function takeOverPublishAck (packet: PublishPacket): void {
  packet.qos = 0
}

/**
 * Aedes would route a terminal's publish locally, store it as retained and
 * queue it for offline clients: all of that happens at the brokers instead,
 * so nothing reaches a terminal twice. Publishes of Aedes itself ($SYS) and of
 * plugins (client null) keep Aedes' own path.
 */
export function bypassLocalRouting (original: BrokerPublish): BrokerPublish {
  return function publish (this: unknown, packet, client, done) {
    if (typeof client === 'object' && client !== null) {
      done?.()
      return
    }
    original.call(this, packet, client, done)
  }
}

/** Aedes' default `authorizeForward` forwards everything; it exports no reference to it, so it is known by name. */
export function isDefaultAuthorizeForward (hook: AuthorizeForwardHook): boolean {
  return hook.name === 'defaultAuthorizeForward'
}

/** The topic filters a terminal holds at Aedes (its local subscriptions). */
export function filtersOf (client: Client): string[] {
  return Object.keys((client as unknown as { subscriptions: Record<string, unknown> }).subscriptions)
}

/** Aedes reads `drainTimeout` from its options each time a terminal's socket is full: a reload changes it live. */
export function setDrainTimeout (aedes: Aedes, ms: number): void {
  hooksOf(aedes).opts.drainTimeout = ms
}

export function hooksOf (aedes: Aedes): AedesHooks {
  return aedes as unknown as AedesHooks
}

/** Stops reading the terminal: a stopping node takes no new publishes, and finishes those it has. */
export function stopReading (client: Client): void {
  (client as unknown as ClientInternals).pause()
}

export function sentDisconnect (client: Client): boolean {
  return (client as unknown as ClientInternals)._disconnected === true
}

/** Aedes' own watch on a terminal that stopped reading: `limits.drainTimeoutMs` applies to the tier's writes too. */
export function watchDrain (client: Client, drained: () => void): void {
  (client as unknown as ClientInternals).waitForDrain(drained)
}

/** What Aedes' MQTT parser of one client emits for each packet it reads, before Aedes handles it. */
export type PacketListener = (this: unknown, packet: { cmd: string, messageId?: number, subscriptions?: Subscription[] }) => void

interface ParserInternals {
  listeners: (event: 'packet') => PacketListener[]
  removeListener: (event: 'packet', listener: PacketListener) => void
  on: (event: 'packet', listener: PacketListener) => void
  prependListener: (event: 'packet', listener: PacketListener) => void
}

/**
 * Lets `wrap` see every packet of this client before Aedes does. Aedes' own
 * listener is the same function for every client, so `wrap` is asked once per
 * such function and its result can be shared: replacing the one listener
 * (rather than adding a second) keeps the parser's emit a direct call, with
 * no listener array copied per packet on the publish path.
 */
export function interceptPackets (client: Client, wrap: (original: PacketListener) => PacketListener): void {
  const parser = (client as unknown as { _parser?: ParserInternals })._parser
  if (parser === undefined) throw new DualBrokerError('DUALBROKER_ERR_AEDES_UNSUPPORTED', 'this Aedes version has no client._parser: the tier cannot see the terminals\' packets')
  const listeners = parser.listeners('packet')
  if (listeners.length !== 1) {
    parser.prependListener('packet', wrap(() => {}))
    return
  }
  parser.removeListener('packet', listeners[0]!)
  parser.on('packet', wrap(listeners[0]!))
}

/** The PUBACK, PUBREC, PUBREL and PUBCOMP a terminal sends; `take` returns true for those it answers itself. */
export type TerminalAck = { cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', messageId: number }

interface KeepaliveInternals {
  _keepaliveInterval: number
  _keepaliveTimer: NodeJS.Timeout | null
}

/**
 * The terminal's acks of deliveries the tier wrote itself go upstream, not to
 * Aedes (which knows no such message, and would answer a PUBREC with a PUBREL
 * of its own): they are taken before Aedes' parser listener (see
 * `interceptPackets`), which gets the rest. A taken packet still counts as a
 * sign of life [MQTT-3.1.2-24].
 */
export function interceptTerminalAcks (client: Client, take: (ack: TerminalAck) => boolean): void {
  const internals = client as unknown as KeepaliveInternals
  interceptPackets(client, (next) => function routeTerminalPacket (this: unknown, packet) {
    const { cmd } = packet
    if ((cmd === 'puback' || cmd === 'pubrec' || cmd === 'pubrel' || cmd === 'pubcomp') && take(packet as TerminalAck)) {
      if (internals._keepaliveInterval > 0) internals._keepaliveTimer?.refresh()
      return
    }
    next.call(this, packet)
  })
}

const CONNACK_FLAGS_OFFSET = 2 // MQTT 3.1.1 §3.2.2.1: byte 1 of the variable header, after the fixed header's 2 bytes
const SESSION_PRESENT = 0x01

/**
 * Aedes derives session present from its own persistence, which holds no
 * terminal session: the brokers do. The CONNACK Aedes writes next gets the bit
 * they reported [MQTT-3.2.2-2]. mqtt-packet writes a CONNACK in pieces (header,
 * length, flags, return code), so the bytes are counted, not the calls.
 */
export function reportSessionPresent (client: Client): void {
  const conn = client.conn as unknown as { write: (chunk: unknown, ...rest: unknown[]) => boolean }
  const hadOwnWrite = Object.hasOwn(conn, 'write')
  const ownWrite = conn.write
  let seen = 0
  conn.write = function writeConnack (this: unknown, chunk: unknown, ...rest: unknown[]): boolean {
    let bytes = chunk
    if (Buffer.isBuffer(chunk)) {
      const start = seen
      seen += chunk.length
      if (start <= CONNACK_FLAGS_OFFSET && seen > CONNACK_FLAGS_OFFSET) {
        bytes = Buffer.from(chunk) // the flags piece is a buffer mqtt-packet shares between connections
        ;(bytes as Buffer)[CONNACK_FLAGS_OFFSET - start] |= SESSION_PRESENT
      }
      if (seen >= 4) {
        if (hadOwnWrite) conn.write = ownWrite
        else delete (conn as Partial<typeof conn>).write
      }
    }
    return ownWrite.call(this, bytes, ...rest)
  }
}

/** The stream Aedes reads this terminal from (see `peerAddress` in listeners.ts). */
export function connectionOf (client: Client): object | undefined {
  return (client as unknown as ClientInternals).conn
}
