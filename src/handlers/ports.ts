/**
 * What the handlers get instead of the tier: each handler takes the ports it
 * needs and nothing else (docs/ARCHITECTURE.md, "Parts").
 */
import type { Client } from '../aedes/internals.js'
import type { TerminalCaps } from '../limits/terminal-caps.js'
import type { PublishObservers } from '../node/observations.js'
import type { SessionRegistry } from '../terminal/registry.js'
import type { TerminalSession } from '../terminal/session.js'
import type { MessageIds } from '../upstream/message-ids.js'
import type { TerminalIdentity } from '../upstream/upstream-link.js'

export interface SubscribePorts {
  readonly sessions: SessionRegistry
  readonly caps: TerminalCaps
}

export interface PublishPorts extends SubscribePorts {
  /** Present when an upstream speaks MQTT 5: each publish then carries an id its copies are recognised by. */
  readonly messageIds: MessageIds | undefined
  /** The deployment's observers of publishes: shown each terminal publish once it is accepted. */
  readonly observers: PublishObservers
}

export interface ConnectPorts extends SubscribePorts {
  /** A session for this terminal, not yet open upstream. */
  readonly newSession: (client: Client, identity: TerminalIdentity) => TerminalSession
  /** The tier began to close: no new terminal is accepted. */
  readonly closing: () => boolean
  /** A terminal refused because no source port was free for its upstream sockets: said and counted. */
  readonly refusedForSourcePorts: (clientId: string, reason: string) => void
}
