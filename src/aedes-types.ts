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

/** The stream Aedes reads this terminal from (see `peerAddress` in listeners.ts). */
export function connectionOf (client: Client): object | undefined {
  return (client as unknown as ClientInternals).conn
}
