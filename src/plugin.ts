import { EventEmitter } from 'node:events'
import type { Aedes, Callback, Client, PublishPacket } from './aedes-types.js'
import { type AedesHooks, hooksOf, stopReading } from './aedes-types.js'
import { pluginSchema, type ResolvedOptions } from './config/schema.js'
import type { DualBrokerOptions } from './options.js'
import { ConfigError } from './config/errors.js'
import { formatIssues } from './config/problems.js'
import type { DualBrokerEvents, TierState } from './events.js'
import { FailoverController } from './failover/controller.js'
import { PolicyTable } from './failover/policy.js'
import { authenticate, preConnect } from './handlers/connect.js'
import { onClientDisconnect } from './handlers/disconnect.js'
import { onPing } from './handlers/ping.js'
import { authorizePublish, forward, localPublish, PublishAdmissions } from './handlers/publish.js'
import { authorizeSubscribe } from './handlers/subscribe.js'
import { onUnsubscribe } from './handlers/unsubscribe.js'
import { TerminalCaps } from './limits/terminal-caps.js'
import { type Logger, silentLogger } from './logger.js'
import { BrokerEndpoint } from './upstream/broker-endpoint.js'
import { BrokerHealth } from './upstream/broker-health.js'
import { MessageIds } from './upstream/message-ids.js'
import { LevelPendingStore } from './store/index.js'
import type { TerminalSession } from './upstream/terminal-session.js'
import type { ForwardFilter } from './upstream/delivery-relay.js'
import type { IPublishPacket } from 'mqtt-packet'
import type { TerminalIdentity } from './upstream/upstream-link.js'

import { LOCAL_TOPIC_PREFIX } from './local-topics.js'
import { authorizeForward } from './handlers/forward.js'
import { Qos2Exchanges } from './handlers/qos2-exchanges.js'

export { LOCAL_TOPIC_PREFIX }

/** The part of the options `reconfigure` takes. */
const liveSchema = pluginSchema.pick({ policies: true, defaultPolicy: true, health: true, limits: true })

export interface PluginExtras {
  logger?: Logger
}

/**
 * The access tier attached to one Aedes instance. Create it with
 * `dualBroker(aedes, options)`.
 */
export class DualBroker extends EventEmitter<DualBrokerEvents> {
  readonly healths: readonly [BrokerHealth, BrokerHealth]
  readonly sessions = new Map<Client, TerminalSession>()
  readonly connectPackets = new WeakMap<Client, TerminalIdentity>()
  readonly failover: FailoverController
  /** Present when an upstream speaks MQTT 5: each publish then carries an id its copies are recognised by. */
  readonly messageIds: MessageIds | undefined
  /** Caps on hostile terminals; its `refusals` also count what the server's listeners refuse. */
  readonly caps: TerminalCaps
  private readonly byClientId = new Map<string, TerminalSession>()
  private readonly publishQueues = new Map<Client, PublishAdmissions>()
  private readonly qos2ByClientId = new Map<string, Qos2Exchanges>()
  private readonly ending = new Map<string, Promise<void>>()
  private readonly detach: Array<() => void> = []
  private closing: Promise<void> | undefined
  /** The instance's `authorizeForward` before the tier's: it sees the deliveries the tier writes itself. */
  private ownForward: AedesHooks['authorizeForward'] | undefined
  private started = false
  private ackSweep: NodeJS.Timeout | undefined

  constructor (readonly aedes: Aedes, readonly options: ResolvedOptions, readonly logger: Logger) {
    super()
    this.healths = [
      new BrokerHealth(new BrokerEndpoint('broker1', options.broker1, options.health)),
      new BrokerHealth(new BrokerEndpoint('broker2', options.broker2, options.health))
    ]
    this.messageIds = options.broker1.protocolVersion === 5 || options.broker2.protocolVersion === 5 ? new MessageIds() : undefined
    const store = options.store?.path === undefined
      ? undefined
      : new LevelPendingStore({ ...options.store, path: options.store.path, logger })
    store?.on('dropped', (event) => {
      this.failover.counters.dropped[event.reason] += event.count
      this.emit('dropped', event)
    })
    this.failover = new FailoverController(this, store, new PolicyTable(options.policies, options.defaultPolicy), options.replay, options.health)
    this.caps = new TerminalCaps(options.limits, this.failover.counters.refused, logger)
  }

  /** Composes with the hooks already on the instance: theirs run first, ours only after they allow. */
  attach (): void {
    const hooks = hooksOf(this.aedes)
    // Read one by one: `publish` lives on the prototype, and a spread would miss it.
    const original = {
      preConnect: hooks.preConnect,
      authenticate: hooks.authenticate,
      authorizeSubscribe: hooks.authorizeSubscribe,
      authorizePublish: hooks.authorizePublish,
      authorizeForward: hooks.authorizeForward,
      publish: hooks.publish
    }
    this.ownForward = original.authorizeForward
    const ownPublish = Object.hasOwn(hooks, 'publish')
    hooks.preConnect = (client, packet, callback) => original.preConnect.call(this.aedes, client, packet, (error, ok) => {
      if (error !== null || !ok) return callback(error, ok)
      preConnect(this)(client, packet, callback)
    })
    const ourAuthenticate = authenticate(this)
    hooks.authenticate = (client, username, password, done) => original.authenticate.call(this.aedes, client, username, password, (error, ok) => {
      if (error !== null || ok !== true) return done(error, ok)
      ourAuthenticate(client, username, password, done)
    })
    const ourSubscribe = authorizeSubscribe(this)
    hooks.authorizeSubscribe = (client, subscription, callback) => original.authorizeSubscribe.call(this.aedes, client, subscription, (error, allowed) => {
      if (error !== null || allowed == null) return callback(error, allowed)
      ourSubscribe(client, allowed, callback)
    })
    hooks.authorizePublish = authorizePublish(this, original.authorizePublish.bind(this.aedes))
    hooks.publish = localPublish(original.publish)
    hooks.authorizeForward = authorizeForward(original.authorizeForward.bind(this.aedes))
    this.detach.push(() => {
      Object.assign(hooks, original)
      if (!ownPublish) delete (hooks as Partial<typeof hooks>).publish
    })
    // After Aedes' own CONNACK and its resend of what it held for the terminal: ours follow, never before.
    this.listen('clientReady', (client: Client) => this.sessions.get(client)?.ready())
    this.listen('ping', onPing(this))
    this.listen('unsubscribe', onUnsubscribe(this))
    this.listen('clientDisconnect', onClientDisconnect(this))
    this.listen('closed', () => { void this.close() })
    this.sweepAcks()
    this.detach.push(() => clearInterval(this.ackSweep))
    this.healths.forEach((health, index) => this.watch(health, index as 0 | 1))
  }

  private listen (event: string, listener: (...args: any[]) => void): void {
    this.aedes.on(event as 'ping', listener)
    this.detach.push(() => this.aedes.removeListener(event, listener))
  }

  private watch (health: BrokerHealth, index: 0 | 1): void {
    const broker = health.endpoint.name
    health.on('up', () => {
      this.logger.info({ broker, url: health.endpoint.safeUrl }, 'broker up')
      this.emit('broker-up', { broker })
      for (const session of this.sessions.values()) void session.bringInLine(index)
      if (this.started) this.failover.brokerUp(index)
    })
    health.on('down', (reason) => {
      this.logger.warn({ broker, url: health.endpoint.safeUrl, reason }, 'broker down')
      this.emit('broker-down', { broker, reason })
      // The mode changes first, so that what the lost sessions had in flight is routed by the new mode.
      if (this.started) this.failover.brokerDown(index, reason)
      for (const session of this.sessions.values()) session.links[index].drop()
    })
  }

  /**
   * Opens the pending store (a store that cannot be opened stops the start), then
   * resolves once each broker's health link has a first verdict (bounded by
   * `health.connectTimeoutMs`).
   */
  async start (): Promise<void> {
    await this.failover.pendingStore?.open()
    const verdicts = this.healths.map((health) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.health.connectTimeoutMs)
      const settle = (): void => { clearTimeout(timer); resolve() }
      health.once('up', settle)
      health.once('down', settle)
    }))
    for (const health of this.healths) health.start()
    await Promise.all(verdicts)
    this.started = true
    this.failover.start()
  }

  private sweepAcks (): void {
    clearInterval(this.ackSweep)
    this.ackSweep = setInterval(() => this.checkAcks(), this.options.health.ackTimeoutMs / 2).unref()
  }

  /**
   * Takes over the options that can change while terminals stay connected (a config reload):
   * the policies, from the next publish on; the health timings except `keepaliveSeconds` (the
   * health links' CONNECT carries it: that one needs a restart), from their next use; and
   * `limits.maxInflight`, for the terminals that connect from now on. Given as a whole, as at
   * start: a key left out is back at its default. No terminal, session or stored message is touched.
   */
  reconfigure (options: Pick<DualBrokerOptions, 'policies' | 'defaultPolicy' | 'health' | 'limits'>): void {
    const parsed = liveSchema.safeParse(options)
    if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, options, liveSchema))
    const { policies, defaultPolicy, health: { keepaliveSeconds: _restartOnly, ...timings }, limits } = parsed.data
    this.failover.usePolicies(new PolicyTable(policies, defaultPolicy))
    Object.assign(this.options, { policies, defaultPolicy })
    const sweepChanged = timings.ackTimeoutMs !== this.options.health.ackTimeoutMs
    // Shared by reference with the endpoints, sessions and the failover controller: each reads it when it needs it.
    Object.assign(this.options.health, timings)
    Object.assign(this.options.limits, limits)
    if (sweepChanged && this.ackSweep !== undefined && !this.isClosing) this.sweepAcks()
  }

  /**
   * A broker that takes publishes but does not ack them (DESIGN §2) is
   * suspect: marked down, so what waits for its acks moves to the next target.
   * One sweep for all terminals instead of a timer per message.
   */
  private checkAcks (): void {
    const now = performance.now()
    for (const session of this.sessions.values()) {
      const link = session.outbox.overdue(now, this.options.health.ackTimeoutMs)
      if (link === undefined) continue
      const health = this.healths[link.endpoint.name === 'broker1' ? 0 : 1]
      this.logger.warn({ broker: link.endpoint.name, clientId: session.client.id }, 'publish ack timed out')
      health.suspect('publish ack timed out')
      if (health.state === 'down') link.drop() // only this session's link was slow: move its messages on
    }
  }

  /** A terminal refused because a broker's socket found no source port: said and counted, never silent. */
  refusedForSourcePorts (clientId: string, reason: string): void {
    this.failover.counters.refused['source-ports']++
    this.logger.warn({ clientId, reason: 'source-ports', detail: reason }, 'terminal refused: no free source port for its upstream sockets')
  }

  flushAll (): void {
    for (const session of this.sessions.values()) session.outbox.flush()
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

  register (session: TerminalSession): void {
    const previous = this.byClientId.get(session.client.id)
    if (previous !== undefined) previous.superseded = true
    this.byClientId.set(session.client.id, session)
    this.sessions.set(session.client, session)
    this.publishQueues.set(session.client, new PublishAdmissions(this, session.client))
  }

  /**
   * The live session with this client id, if any, steps aside for a new
   * connection (see `yieldToTakeover`); one that is ending finishes first, so
   * that its last acks reach the brokers before the new connection takes over.
   */
  async prepareTakeover (clientId: string): Promise<TerminalSession | undefined> {
    await this.ending.get(clientId)
    const previous = this.byClientId.get(clientId)
    await previous?.yieldToTakeover()
    return previous
  }

  /** A terminal's session is ending: `ended` resolves once both brokers closed its connections. */
  sessionEnding (clientId: string, ended: Promise<void>): void {
    this.ending.set(clientId, ended)
    void ended.then(() => { if (this.ending.get(clientId) === ended) this.ending.delete(clientId) })
  }

  unregister (session: TerminalSession): void {
    this.sessions.delete(session.client)
    this.publishQueues.delete(session.client)
    if (this.byClientId.get(session.client.id) === session) this.byClientId.delete(session.client.id)
    const exchanges = this.qos2ByClientId.get(session.client.id)
    if (exchanges === session.qos2 && (session.identity.clean || exchanges.size === 0)) this.qos2ByClientId.delete(session.client.id)
  }

  admissions (client: Client): PublishAdmissions | undefined {
    return this.publishQueues.get(client)
  }

  forward (client: Client, packet: PublishPacket, done: Callback): void {
    forward(this, client, packet, done)
  }

  isLocalTopic (topic: string): boolean {
    return topic.startsWith(LOCAL_TOPIC_PREFIX)
  }

  get state (): TierState {
    const [broker1, broker2] = this.healths
    const store = this.failover.pendingStore
    return {
      mode: this.failover.mode,
      brokers: {
        broker1: { state: broker1.state, url: broker1.endpoint.safeUrl },
        broker2: { state: broker2.state, url: broker2.endpoint.safeUrl }
      },
      clients: this.sessions.size,
      pending: { messages: store?.count ?? 0, bytes: store?.bytes ?? 0 },
      store: {
        enabled: store !== undefined,
        writable: this.failover.storeError === undefined,
        ...(this.failover.storeError !== undefined && { error: this.failover.storeError })
      },
      counters: this.failover.counters
    }
  }

  /**
   * Stops reading the terminals, then resolves once none has a publish in
   * flight (each one acked upstream or stored), or after `timeoutMs`; true
   * when everything became safe. For a graceful stop, after the listeners
   * stopped accepting: a terminal that keeps publishing would otherwise never
   * let the node see nothing in flight. What it sends meanwhile stays unread
   * and unacknowledged, and it resends that through the next node.
   */
  async drain (timeoutMs: number): Promise<boolean> {
    for (const session of this.sessions.values()) stopReading(session.client)
    const until = Date.now() + timeoutMs
    const busy = (): boolean => [...this.sessions.values()].some((session) => session.outbox.size > 0)
    while (busy()) {
      if (Date.now() >= until) return false
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return true
  }

  /**
   * The instance's own `authorizeForward`, which sees every delivery to a
   * terminal as it would on Aedes' own path; undefined for Aedes' default,
   * which forwards everything (known by name: Aedes exports no reference to it).
   */
  get forwardFilter (): ForwardFilter | undefined {
    const theirs = this.ownForward
    if (theirs === undefined || theirs.name === 'defaultAuthorizeForward') return undefined
    return (client, packet) => theirs.call(this.aedes, client, packet as unknown as PublishPacket) as unknown as IPublishPacket | null | undefined
  }

  get isClosing (): boolean {
    return this.closing !== undefined
  }

  /** Ends every upstream session, health link and timer, and gives the instance its own hooks back. */
  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown (): Promise<void> {
    for (const undo of this.detach.splice(0)) undo()
    await Promise.all([...this.sessions.values()].map((session) => session.close(true)))
    this.sessions.clear()
    this.byClientId.clear()
    this.publishQueues.clear()
    this.qos2ByClientId.clear()
    await Promise.all(this.healths.map((health) => health.close()))
    await this.failover.close()
    this.caps.close()
  }
}

/**
 * Turns an Aedes instance into the access tier: every terminal is kept
 * online at Broker1 and Broker2. Options are validated once, up front.
 */
export async function dualBroker (aedes: Aedes, options: DualBrokerOptions & PluginExtras): Promise<DualBroker> {
  const { logger = silentLogger, ...rest } = options
  const parsed = pluginSchema.safeParse(rest)
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, rest, pluginSchema))
  const tier = new DualBroker(aedes, parsed.data, logger)
  tier.attach()
  await tier.start()
  return tier
}
