/**
 * Everything the tier touches of Aedes 1.x beyond its public typings, each
 * trick behind a named function (docs/ARCHITECTURE.md, "What the adapter
 * relies on in Aedes"). Only src/aedes/ reaches into Aedes' internals; the
 * rest of the tier calls these.
 */
import type { Aedes, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import AedesPacket from 'aedes-packet'
import type { Qlobber } from 'qlobber'
import type { Packet } from 'mqtt-packet'
import { DualBrokerError } from '../errors.js'
import { type FallbackParser, PacketReader } from '../mqtt/packet-reader.js'

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
  published: (packet: PublishPacket, client: Client | null, callback: Callback) => void
  subscribe: BrokerSubscribe
  unsubscribe: BrokerSubscribe
  /** Aedes' message router (mqemitter, or a shared one such as mqemitter-redis). */
  mq: object
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
 * A persistent terminal's session lives on at the brokers when it goes, yet
 * Aedes saw a clean one (`hideSessionFromAedes`). Aedes reads `client.clean`
 * again while it closes the client: from then on it reads false, so that Aedes
 * ends it as a persistent one, without announcing that its subscriptions went
 * (the `unsubscribe` event), as plain Aedes does. While connected it stays
 * clean, so that Aedes stores nothing of the terminal's. (Aedes binds its
 * `close` at construction: wrapping it would miss the socket's end.)
 */
export function endAsPersistentSession (client: Client): void {
  Object.defineProperty(client, 'clean', {
    configurable: true,
    get (this: Client): boolean { return !this.closed },
    set () {} // Aedes sets it from the CONNECT, whose clean flag the tier set (hideSessionFromAedes)
  })
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

/** Where the node's own publishes go (`aedes.publish` with no client): through the brokers. */
export type AppPublish = (packet: PublishPacket, done: Callback) => void

/**
 * Aedes would route a terminal's publish locally, store it as retained and
 * queue it for offline clients: all of that happens at the brokers instead,
 * so nothing reaches a terminal twice. A publish of the deployment's own code
 * (`aedes.publish(packet, done)`, no client) is a publish of the node, and
 * goes through the brokers too (`app`). Aedes' `$SYS/` topics keep its own
 * path: they are the node's, never mirrored upstream.
 */
export function routeThroughBrokers (original: BrokerPublish, app: AppPublish): BrokerPublish {
  return function publish (this: unknown, packet, client, done) {
    if (typeof client === 'function') {
      done = client
      client = null
    }
    if (client !== null && client !== undefined) return done?.() // a terminal's: the tier routed it already
    if (packet.topic.startsWith(SYS_PREFIX)) return original.call(this, packet, client, done)
    app(packet, done ?? noop)
  }
}

const SYS_PREFIX = '$SYS/'
const noop: Callback = () => {}

/** A handler of `aedes.subscribe(filter, handler)`: Aedes' mq calls it with each matching message. */
export type MessageHandler = (packet: PublishPacket, callback: () => void) => void
export type BrokerSubscribe = (topic: string, handler: MessageHandler, done?: Callback) => void

/** The deployment's own subscriptions (`aedes.subscribe`), received through the brokers. */
export interface ServerSubscribe {
  subscribe: (filter: string, handler: MessageHandler, done: Callback) => void
  unsubscribe: (filter: string, handler: MessageHandler) => void
}

/**
 * Aedes subscribes each terminal's filters through the same `subscribe` the
 * deployment calls, with a delivery function of its own: those are named
 * (lib/handlers/subscribe.js), and stay Aedes' (the tier gates them in
 * `authorizeForward`).
 */
function isTerminalDelivery (handler: MessageHandler): boolean {
  return handler.name === 'handlePacketSubscription' || handler.name === 'deliverSharp'
}

/**
 * `aedes.subscribe` and `aedes.unsubscribe` of the deployment's code: the
 * handler stays in Aedes' mq (where the node's `$SYS/` messages still reach
 * it), and the filter is subscribed through the node's own upstream sessions
 * (`server`), which deliver what the brokers route. `done` once the brokers answered; with an
 * error (a malformed filter, a broker's refusal) the handler is subscribed nowhere.
 */
export function routeSubscriptions (hooks: AedesHooks, server: ServerSubscribe): void {
  const { subscribe, unsubscribe } = hooks
  hooks.subscribe = function (this: unknown, topic, handler, done) {
    if (isTerminalDelivery(handler) || topic.startsWith(SYS_PREFIX)) return subscribe.call(this, topic, handler, done)
    subscribe.call(this, topic, handler, (error) => {
      if (error != null) return done?.(error)
      server.subscribe(topic, handler, (refused) => {
        if (refused == null) return done?.()
        // Not subscribed anywhere, then: the handler leaves the mq too.
        server.unsubscribe(topic, handler)
        unsubscribe.call(this, topic, handler, () => done?.(refused))
      })
    })
  }
  hooks.unsubscribe = function (this: unknown, topic, handler, done) {
    if (!isTerminalDelivery(handler) && !topic.startsWith(SYS_PREFIX)) server.unsubscribe(topic, handler)
    unsubscribe.call(this, topic, handler, done)
  }
}

interface MqInternals {
  _matcher?: Qlobber<MessageHandler>
}

/**
 * The subscriptions the deployment made with `aedes.subscribe` before the
 * plugin was attached: read from the trie of Aedes' mq (mqemitter and
 * mqemitter-redis keep one qlobber), leaving out Aedes' own terminals' and `$SYS/`.
 */
export function serverSubscriptionsOf (aedes: Aedes): Array<[string, MessageHandler]> {
  const trie = (hooksOf(aedes).mq as MqInternals)._matcher?.get_trie()
  if (trie === undefined) throw new DualBrokerError('DUALBROKER_ERR_AEDES_UNSUPPORTED', 'this Aedes mq has no qlobber matcher: the deployment\'s subscriptions cannot be found')
  const found: Array<[string, MessageHandler]> = []
  const visit = (node: Map<string, unknown>, words: string[]): void => {
    for (const [word, child] of node) {
      if (word !== '/') {
        visit(child as Map<string, unknown>, [...words, word])
        continue
      }
      const filter = words.join('/')
      if (filter.startsWith(SYS_PREFIX)) continue
      for (const handler of child as MessageHandler[]) if (!isTerminalDelivery(handler)) found.push([filter, handler])
    }
  }
  visit(trie, [])
  return found
}

// aedes-packet's typings declare a namespace; the module is the constructor itself.
const Packet = AedesPacket as unknown as new (original: object, broker: Aedes) => PublishPacket

/** A packet as Aedes hands it to the handlers of `aedes.subscribe` (aedes-packet). */
export function aedesPacket (aedes: Aedes, content: { topic: string, payload: Buffer, qos: number, retain: boolean, clientId?: string }): PublishPacket {
  return new Packet(content, aedes)
}

/** Someone observes publishes: a listener of Aedes' `publish` event, or a `published` hook of the deployment's. */
export function publishesObserved (aedes: Aedes): boolean {
  return aedes.listenerCount('publish') > 0 || hooksOf(aedes).published.name !== 'defaultPublished'
}

/**
 * What Aedes does last for each publish it routed (its `callPublished`): the
 * deployment's `published` hook, then the `publish` event. `failed` hears the
 * hook's error, on which Aedes would disconnect the client.
 */
export function observePublish (aedes: Aedes, packet: PublishPacket, client: Client | null, failed: Callback): void {
  hooksOf(aedes).published(packet, client, failed)
  aedes.emit('publish', packet, client as Client)
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

interface ClientParser extends FallbackParser {
  emit: (event: 'packet', packet: Packet) => boolean
  settings: { protocolVersion?: number }
}

/**
 * The terminal's packets after its CONNECT are cut and decoded by the tier's
 * PacketReader instead of Aedes' mqtt-packet parser, which still reads every
 * packet the reader does not decode (and emits to the same listeners).
 */
export function readPacketsDirectly (client: Client): void {
  const parser = (client as unknown as { _parser?: ClientParser })._parser
  if (parser === undefined || Object.hasOwn(parser, 'parse')) return
  const reader = new PacketReader(parser, (packet) => parser.emit('packet', packet), () => parser.settings.protocolVersion ?? 4)
  parser.parse = function readDirectly (bytes: Buffer): number {
    reader.read(bytes)
    return 0
  }
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
export function interceptTerminalAcks (client: Client, take: (client: Client, ack: TerminalAck) => boolean): void {
  const internals = client as unknown as KeepaliveInternals
  interceptPackets(client, (next) => function routeTerminalPacket (this: unknown, packet) {
    const { cmd } = packet
    if ((cmd === 'puback' || cmd === 'pubrec' || cmd === 'pubrel' || cmd === 'pubcomp') && take(client, packet as TerminalAck)) {
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

/**
 * Aedes' `ack` event, for a delivery the tier wrote and the terminal acked
 * (Aedes itself never saw it): only while someone listens.
 */
/** Someone listens to Aedes' `ack` event: only then is a delivery's packet kept until its ack. */
export function observesAcks (client: Client): boolean {
  return (client as unknown as { broker: Aedes }).broker.listenerCount('ack') > 0
}

export function announceAck<T> (client: Client, packetOf: (from: T) => object | undefined, from: T): void {
  const broker = (client as unknown as { broker: Aedes }).broker
  // The packet is made only for a listener: most deployments have none, and this is once per delivery.
  if (broker.listenerCount('ack') > 0) broker.emit('ack', packetOf(from) as PublishPacket, client)
}

/** The stream Aedes reads this terminal from (see `peerAddress` in listeners.ts). */
export function connectionOf (client: Client): object | undefined {
  return (client as unknown as ClientInternals).conn
}
