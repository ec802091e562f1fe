import type { Client } from '../aedes/internals.js'
import type { UpstreamLink } from '../upstream/upstream-link.js'
import { Qos2Exchanges } from './qos2-exchanges.js'
import type { TerminalSession } from './session.js'

/**
 * The terminals connected through this node: their sessions by Aedes client
 * and by client id, what a new connection with a known client id waits for
 * (takeover), and the QoS 2 exchanges a persistent terminal's next connection
 * on this node finds again.
 */
export class SessionRegistry {
  private readonly byClient = new Map<Client, TerminalSession>()
  private readonly byClientId = new Map<string, TerminalSession>()
  private readonly qos2ByClientId = new Map<string, Qos2Exchanges>()
  private readonly ending = new Map<string, Promise<void>>()

  get size (): number {
    return this.byClient.size
  }

  get (client: Client): TerminalSession | undefined {
    return this.byClient.get(client)
  }

  values (): IterableIterator<TerminalSession> {
    return this.byClient.values()
  }

  register (session: TerminalSession): void {
    const previous = this.byClientId.get(session.client.id)
    if (previous !== undefined) previous.superseded = true
    this.byClientId.set(session.client.id, session)
    this.byClient.set(session.client, session)
  }

  unregister (session: TerminalSession): void {
    this.byClient.delete(session.client)
    if (this.byClientId.get(session.client.id) === session) this.byClientId.delete(session.client.id)
    const exchanges = this.qos2ByClientId.get(session.client.id)
    if (exchanges === session.qos2 && (session.identity.clean || exchanges.size === 0)) this.qos2ByClientId.delete(session.client.id)
  }

  /**
   * A terminal's QoS 2 exchanges: a clean session starts with none [MQTT-3.1.2-6];
   * a persistent one finds those its previous connection left on this node.
   */
  qos2Exchanges (clientId: string, clean: boolean): Qos2Exchanges {
    let exchanges = clean ? undefined : this.qos2ByClientId.get(clientId)
    if (exchanges === undefined) {
      exchanges = new Qos2Exchanges()
      this.qos2ByClientId.set(clientId, exchanges)
    }
    return exchanges
  }

  /**
   * The live session with this client id, if any, steps aside for a new
   * connection (see `TerminalSession.yieldToTakeover`); one that is ending
   * finishes first, so that its last acks reach the brokers before the new
   * connection takes over.
   */
  async prepareTakeover (clientId: string): Promise<TerminalSession | undefined> {
    await this.ending.get(clientId)
    const previous = this.byClientId.get(clientId)
    await previous?.yieldToTakeover()
    return previous
  }

  /** The terminal is gone: its session ends, and a next connection with its client id waits until both brokers closed theirs. */
  end (session: TerminalSession, graceful: boolean): void {
    this.unregister(session)
    const clientId = session.client.id
    const ended = session.close(graceful)
    this.ending.set(clientId, ended)
    void ended.then(() => { if (this.ending.get(clientId) === ended) this.ending.delete(clientId) })
  }

  /** The tier's mode changed: every terminal's waiting publishes are routed again. */
  rerouteAll (): void {
    for (const session of this.byClient.values()) session.outbox.flush()
  }

  /** Each session whose oldest live publish has waited longer than `timeoutMs` for its broker's ack, with that link. */
  * overdue (now: number, timeoutMs: number): Generator<[TerminalSession, UpstreamLink]> {
    for (const session of this.byClient.values()) {
      const link = session.outbox.overdue(now, timeoutMs)
      if (link !== undefined) yield [session, link]
    }
  }

  /** Ends every session (the tier is closing) and forgets them all. */
  async closeAll (): Promise<void> {
    await Promise.all([...this.byClient.values()].map((session) => session.close(true)))
    this.byClient.clear()
    this.byClientId.clear()
    this.qos2ByClientId.clear()
  }
}
