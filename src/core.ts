/**
 * The parts of one access tier and how they are wired (docs/ARCHITECTURE.md):
 * broker health, the routing table and the failover mode machine over it, the
 * pending store, the session registry, and the handlers attached to Aedes
 * through the adapter. `DualBroker` (plugin.ts) is its public face.
 */
import type { IPublishPacket } from 'mqtt-packet'
import { attachHooks, type AttachedHooks } from './aedes/hooks.js'
import {
  type Aedes, aedesPacket, type Client, observePublish, publishesObserved, type PublishPacket, serverSubscriptionsOf, stopReading
} from './aedes/internals.js'
import { type ResolvedOptions, SESSION_NEVER_EXPIRES } from './config/schema.js'
import { newCounters, type TierCounters } from './state.js'
import type { TierEmitter, TierState } from './events.js'
import { ModeMachine } from './failover/mode.js'
import { StoreSink } from './failover/store-sink.js'
import { connectHandlers } from './handlers/connect.js'
import { onClientDisconnect } from './handlers/disconnect.js'
import { authorizeForward } from './handlers/forward.js'
import { onPing } from './handlers/ping.js'
import type { ConnectPorts } from './handlers/ports.js'
import { authorizePublish } from './handlers/publish.js'
import { authorizeSubscribe } from './handlers/subscribe.js'
import { onUnsubscribe } from './handlers/unsubscribe.js'
import { TerminalCaps } from './limits/terminal-caps.js'
import type { Logger } from './logger.js'
import { NodeSession } from './node/node-session.js'
import type { PublishObservers } from './node/observations.js'
import type { OutboxPorts } from './routing/outbox.js'
import { PolicyTable, RoutingTable } from './routing/routing-table.js'
import { LevelPendingStore, type PendingStore } from './store/index.js'
import type { ForwardFilter } from './terminal/delivery-relay.js'
import { SessionRegistry } from './terminal/registry.js'
import { SessionLoss } from './terminal/session-loss.js'
import { TerminalSession } from './terminal/session.js'
import { BrokerEndpoint, type SessionTerms } from './upstream/broker-endpoint.js'
import { BrokerHealth } from './upstream/broker-health.js'
import { MessageIds } from './upstream/message-ids.js'
import { written } from './mqtt/packet-writer.js'
import type { TerminalIdentity } from './upstream/upstream-link.js'

/** What the terminals' upstream sessions announce where they speak MQTT 5. */
function sessionTerms ({ limits, wills, sessions }: ResolvedOptions): SessionTerms {
  return {
    receiveMaximum: limits.receiveMaximum,
    willDelaySeconds: wills.delaySeconds,
    sessionExpirySeconds: sessions.expirySeconds === 'never' ? SESSION_NEVER_EXPIRES : sessions.expirySeconds
  }
}

export class TierCore {
  readonly healths: readonly [BrokerHealth, BrokerHealth]
  readonly sessions = new SessionRegistry()
  readonly counters: TierCounters = newCounters()
  /** Sessions a broker came back without, until whole again (src/terminal/session-loss.ts). */
  readonly loss: SessionLoss
  /** Caps on hostile terminals; its `refusals` also count what the server's listeners refuse. */
  readonly caps: TerminalCaps
  readonly table: RoutingTable
  readonly modes: ModeMachine
  /** The node's own session: the deployment's `aedes.publish` and `aedes.subscribe` (src/node/). */
  readonly node: NodeSession
  private readonly observers: PublishObservers
  private readonly sink: StoreSink | undefined
  private readonly outbox: OutboxPorts
  /** Present when an upstream speaks MQTT 5: each publish then carries an id its copies are recognised by. */
  private readonly messageIds: MessageIds | undefined
  private attached: AttachedHooks | undefined
  /** The instance's own authorizeForward, which every delivery the tier writes passes; undefined for Aedes' default. */
  forwardFilter: ForwardFilter | undefined
  private ackSweep: NodeJS.Timeout | undefined
  private started = false
  closing = false

  constructor (readonly aedes: Aedes, readonly options: ResolvedOptions, private readonly events: TierEmitter, private readonly logger: Logger) {
    const { health } = options
    const terms = sessionTerms(options)
    this.healths = [
      new BrokerHealth(new BrokerEndpoint('broker1', options.broker1, health, terms)),
      new BrokerHealth(new BrokerEndpoint('broker2', options.broker2, health, terms))
    ]
    // Active while a broker's sessions speak MQTT 5 as decided, not as configured (see watch).
    this.messageIds = options.broker1.protocolVersion !== 4 || options.broker2.protocolVersion !== 4 ? new MessageIds() : undefined
    // The deployment's own store (`pendingStore`), else LevelDB at `store.path`, else none.
    const store: PendingStore | undefined = options.pendingStore ??
      (options.store?.path === undefined ? undefined : new LevelPendingStore({ ...options.store, path: options.store.path, logger }))
    store?.on('dropped', (event) => {
      this.counters.dropped[event.reason] += event.count
      events.emit('dropped', event)
    })
    this.sink = store === undefined ? undefined : new StoreSink(store, this.counters, logger)
    this.table = new RoutingTable(new PolicyTable(options.policies, options.defaultPolicy), store !== undefined)
    this.outbox = { table: this.table, store: this.sink, counters: this.counters, events, health }
    this.loss = new SessionLoss(this.counters, logger, events, health)
    this.modes = new ModeMachine({
      healths: this.healths, table: this.table, sink: this.sink, replay: options.replay, timing: health,
      counters: this.counters, events, logger, rerouteAll: () => this.rerouteAll(),
      sessionsWhole: () => this.loss.whole(0)
    })
    this.caps = new TerminalCaps(options.limits, this.counters.refused, logger)
    this.observers = {
      active: () => publishesObserved(aedes),
      observe: (packet, client, failed) => observePublish(aedes, packet, client, failed)
    }
    this.node = new NodeSession({
      clientId: options.node.clientId ?? `dual-broker-node-${aedes.id}`,
      healths: this.healths,
      outbox: this.outbox,
      counters: this.counters,
      dedup: options.dedup,
      messageIds: this.messageIds,
      observers: this.observers,
      packetFor: (content) => aedesPacket(aedes, content)
    })
  }

  /** The handlers, given their ports, composed with the instance's own hooks; `aedesClosed` when the instance closes. */
  attach (aedesClosed: () => void): void {
    const { sessions, caps } = this
    const connectPorts: ConnectPorts = {
      sessions,
      caps,
      newSession: (client, identity) => this.newSession(client, identity),
      closing: () => this.closing,
      refusedForSourcePorts: (clientId, reason) => this.refusedForSourcePorts(clientId, reason)
    }
    this.attached = attachHooks(this.aedes, {
      ...connectHandlers(connectPorts),
      authorizeSubscribe: authorizeSubscribe({ sessions, caps }),
      authorizePublish: (theirs) => authorizePublish({ sessions, caps, messageIds: this.messageIds, observers: this.observers }, theirs),
      authorizeForward,
      appPublish: (packet, done) => this.node.publish(packet, done),
      serverSubscribe: this.node,
      listeners: {
        // After Aedes' own CONNACK: the deliveries the brokers sent meanwhile follow, never before [MQTT-3.2.0-1].
        clientReady: (client: Client) => sessions.get(client)?.ready(),
        ping: onPing(sessions),
        unsubscribe: onUnsubscribe(sessions),
        clientDisconnect: onClientDisconnect(sessions),
        closed: aedesClosed
      }
    })
    const theirs = this.attached.ownForward
    this.forwardFilter = theirs === undefined
      ? undefined
      : (client, packet) => theirs(client, packet as unknown as PublishPacket) as unknown as IPublishPacket | null | undefined
    // The deployment's subscriptions made before the plugin came: subscribed upstream as the node's session opens.
    for (const [filter, handler] of serverSubscriptionsOf(this.aedes)) this.node.subscribe(filter, handler, () => {})
    this.sweepAcks()
    this.healths.forEach((health, index) => this.watch(health, index as 0 | 1))
  }

  private newSession (client: Client, identity: TerminalIdentity): TerminalSession {
    const { dedup, limits } = this.options
    return new TerminalSession({
      client,
      identity,
      healths: this.healths,
      outbox: this.outbox,
      counters: this.counters,
      dedup,
      maxInflight: limits.maxInflight,
      forwardFilter: this.forwardFilter,
      qos2: this.sessions.qos2Exchanges(client.id, identity.clean),
      loss: this.loss
    })
  }

  private watch (health: BrokerHealth, index: 0 | 1): void {
    const broker = health.endpoint.name
    health.on('up', () => {
      const { protocolVersion } = health.endpoint
      if (this.messageIds !== undefined) this.messageIds.active = this.healths.some((h) => h.endpoint.protocolVersion === 5)
      this.logger.info({ broker, url: health.endpoint.safeUrl, protocolVersion, decided: health.endpoint.negotiates }, 'broker up')
      this.events.emit('broker-up', { broker, protocolVersion })
      for (const session of this.sessions.values()) void session.bringInLine(index)
      void this.node.bringInLine(index)
      if (this.started) this.modes.brokerUp(index)
    })
    health.on('down', (reason) => {
      this.logger.warn({ broker, url: health.endpoint.safeUrl, reason }, 'broker down')
      this.events.emit('broker-down', { broker, reason })
      // The mode changes first, so that what the lost sessions had in flight is routed by the new mode.
      if (this.started) this.modes.brokerDown(index, reason)
      for (const session of this.sessions.values()) session.links[index].drop()
      this.node.links[index].drop()
    })
  }

  /**
   * Opens the pending store (a store that cannot be opened stops the start), then
   * resolves once each broker's health link has a first verdict (bounded by
   * `health.connectTimeoutMs`).
   */
  async start (): Promise<void> {
    await this.sink?.store.open()
    const verdicts = this.healths.map((health) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.health.connectTimeoutMs)
      const settle = (): void => { clearTimeout(timer); resolve() }
      health.once('up', settle)
      health.once('down', settle)
    }))
    for (const health of this.healths) health.start()
    await Promise.all(verdicts)
    await this.node.open()
    this.started = true
    this.modes.start()
  }

  /** The tier's mode changed: every publisher's waiting publishes are routed again, the node's among them. */
  private rerouteAll (): void {
    this.sessions.rerouteAll()
    this.node.outbox.flush()
  }

  sweepAcks (): void {
    clearInterval(this.ackSweep)
    if (this.closing) return
    this.ackSweep = setInterval(() => this.checkAcks(), this.options.health.ackTimeoutMs / 2).unref()
  }

  /**
   * A broker that takes publishes but does not ack them (README "Failover") is
   * suspect: marked down, so what waits for its acks moves to the next target.
   * One sweep for all terminals instead of a timer per message.
   */
  private checkAcks (): void {
    for (const [session, link] of this.sessions.overdue(performance.now(), this.options.health.ackTimeoutMs)) {
      const health = this.healths[link.index]
      this.logger.warn({ broker: link.endpoint.name, clientId: session.client.id }, 'publish ack timed out')
      health.suspect('publish ack timed out')
      if (health.state === 'down') link.drop() // only this session's link was slow: move its messages on
    }
    const link = this.node.outbox.overdue(performance.now(), this.options.health.ackTimeoutMs)
    if (link !== undefined) {
      this.logger.warn({ broker: link.endpoint.name, clientId: this.node.clientId }, 'publish ack timed out')
      this.healths[link.index].suspect('publish ack timed out')
      if (this.healths[link.index].state === 'down') link.drop()
    }
  }

  /** A terminal refused because a broker's socket found no source port: said and counted, never silent. */
  private refusedForSourcePorts (clientId: string, reason: string): void {
    this.counters.refused['source-ports']++
    this.logger.warn({ clientId, reason: 'source-ports', detail: reason }, 'terminal refused: no free source port for its upstream sockets')
  }

  get state (): TierState {
    const [broker1, broker2] = this.healths
    const store = this.sink?.store
    const error = this.sink?.error
    return {
      mode: this.table.mode,
      brokers: {
        broker1: { state: broker1.state, url: broker1.endpoint.safeUrl, protocolVersion: broker1.endpoint.decidedProtocol ?? null },
        broker2: { state: broker2.state, url: broker2.endpoint.safeUrl, protocolVersion: broker2.endpoint.decidedProtocol ?? null }
      },
      clients: this.sessions.size,
      pending: { messages: store?.count ?? 0, bytes: store?.bytes ?? 0 },
      store: { enabled: store !== undefined, writable: error === undefined, ...(error !== undefined && { error }) },
      sessionsLost: { broker1: this.loss.lost(0), broker2: this.loss.lost(1) },
      counters: this.counters,
      node: { clientId: this.node.clientId, online: { broker1: this.node.links[0].online, broker2: this.node.links[1].online } }
    }
  }

  /** See `DualBroker.drain`. */
  async drain (timeoutMs: number): Promise<boolean> {
    const sessions = [...this.sessions.values()]
    for (const session of sessions) stopReading(session.client)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<false>((resolve) => { timer = setTimeout(resolve, timeoutMs, false) })
    const safe = Promise.all([...sessions.map((session) => session.outbox.whenEmpty()), this.node.outbox.whenEmpty()])
      .then(() => Promise.all(sessions.map((session) => written(session.client.conn))))
      .then(() => true)
    const drained = await Promise.race([safe, timedOut])
    clearTimeout(timer)
    return drained
  }

  /** Ends every upstream session, health link and timer, and gives the instance its own hooks back. */
  async close (): Promise<void> {
    this.closing = true
    this.attached?.detach()
    clearInterval(this.ackSweep)
    await Promise.all([this.sessions.closeAll(), this.node.close()])
    await Promise.all(this.healths.map((health) => health.close()))
    await this.modes.close()
    this.loss.close()
    this.caps.close()
  }
}

