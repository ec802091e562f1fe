/**
 * Narrow types for the parts of Aedes 1.x that its own typings leave out
 * (see shared AEDES-NOTES.md, "TypeScript gaps"). Everything the plugin
 * touches beyond the public typings goes through this one file.
 */
import type { Aedes, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'

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
export type BrokerPublish = (packet: PublishPacket, client: Client | null | Callback, done?: Callback) => void

/** The hook properties and undocumented members of an Aedes instance that the plugin composes with. */
export interface AedesHooks {
  preConnect: PreConnectHook
  authenticate: AuthenticateHook
  authorizePublish: AuthorizePublishHook
  authorizeSubscribe: AuthorizeSubscribeHook
  publish: BrokerPublish
  authorizeForward: (client: Client, packet: PublishPacket) => PublishPacket | null | undefined
  closed: boolean
}

/** Members of an Aedes Client that exist at run time but not in the typings. */
export interface ClientInternals {
  /** Set only when the client sent a DISCONNECT packet. */
  _disconnected?: boolean
  /** Calls back on 'drain'; closes the client when none comes within the broker's drainTimeout. */
  waitForDrain: (callback: () => void) => void
}

export function hooksOf (aedes: Aedes): AedesHooks {
  return aedes as unknown as AedesHooks
}

export function sentDisconnect (client: Client): boolean {
  return (client as unknown as ClientInternals)._disconnected === true
}

/** Aedes' own watch on a terminal that stopped reading: `limits.drainTimeoutMs` applies to the tier's writes too. */
export function watchDrain (client: Client, drained: () => void): void {
  (client as unknown as ClientInternals).waitForDrain(drained)
}

/** What Aedes' MQTT parser of one client emits for each packet it reads, before Aedes handles it. */
export type PacketListener = (this: unknown, packet: { cmd: string, subscriptions?: Subscription[] }) => void

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
  if (parser === undefined) throw new Error('this Aedes version has no client._parser: the tier cannot check SUBSCRIBE packets')
  const listeners = parser.listeners('packet')
  if (listeners.length !== 1) {
    parser.prependListener('packet', wrap(() => {}))
    return
  }
  parser.removeListener('packet', listeners[0]!)
  parser.on('packet', wrap(listeners[0]!))
}
