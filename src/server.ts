import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Aedes } from 'aedes'
import { ConfigError } from './config/errors.js'
import { openDataDir } from './data-dir.js'
import { formatIssues } from './config/problems.js'
import { embeddedPorts, listenHost } from './config/demo.js'
import { planReload } from './config/reload.js'
import { type ResolvedServerConfig, serverSchema, terminalLimitsSchema } from './config/schema.js'
import type { AccessTierConfig } from './options.js'
import { startEmbeddedBrokers, type EmbeddedBrokers } from './embedded-brokers.js'
import { type Address, type Listener, type ListenOptions, listenTcp, listenWs } from './listeners.js'
import { fdBudget } from './limits/fd-budget.js'
import { logRefusals } from './refusals.js'
import { type Logger, silentLogger } from './logger.js'
import { coreOf, type DualBroker, dualBroker } from './plugin.js'
import { setDrainTimeout } from './aedes/internals.js'
import { status as statusPlugin, type StatusServer } from '../plugins/status/index.js'
import { sysTopics } from '../plugins/sys-topics.js'

export type { Address }

export interface AccessTier {
  readonly tier: DualBroker
  readonly aedes: Aedes
  readonly addresses: {
    mqtt: Address
    ws?: Address
    mqtts?: Address
    /** The status server (health, metrics, status page), when `http.port` is set. */
    http?: Address
    broker1: string
    broker2: string
    embeddedBrokers: boolean
  }
  /**
   * Takes over what can change live from a new configuration (a reload: SIGHUP on the command
   * line) and says which changed keys it applied and which wait for a restart. No terminal is
   * dropped and no stored message touched. Throws a ConfigError, changing nothing, when `config` is invalid.
   */
  reconfigure: (config: AccessTierConfig | ResolvedServerConfig) => { applied: string[], restartNeeded: string[] }
  close: () => Promise<void>
}

/**
 * The standalone server (`aedes-dual-broker/server`): Aedes with its persistence in the data dir, the
 * plugin, and the terminals' listeners (TCP, optionally WebSocket). With no
 * broker configured, two embedded Aedes brokers stand in as Broker1/Broker2.
 */
export async function createAccessTier (config: AccessTierConfig | ResolvedServerConfig, options: { logger?: Logger } = {}): Promise<AccessTier> {
  const logger = options.logger ?? silentLogger
  const parsed = serverSchema.safeParse(config)
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, config))
  const resolved = parsed.data
  if ((resolved.broker1 === undefined) !== (resolved.broker2 === undefined)) {
    throw new ConfigError([`${resolved.broker1 === undefined ? 'broker1' : 'broker2'}: required when the other broker is set`])
  }
  const cleanup: Array<() => Promise<void>> = []
  const listeners: Listener[] = []
  let tier: DualBroker | undefined
  let status: StatusServer | undefined
  let closing: Promise<void> | undefined
  /**
   * Graceful: `/health` says `stopping` (503) for `http.drainDelayMs` while the node still serves,
   * so that a load balancer takes it out first (README "Several nodes"); then stop accepting, let
   * publishes in flight become safe (bounded by health.ackTimeoutMs: acked upstream or committed
   * to the store), drop the terminals (they come back through another node and find their
   * sessions at the brokers), end the upstream sessions, and flush and close the store.
   */
  const close = (drainDelayMs = resolved.http.drainDelayMs): Promise<void> => {
    closing ??= (async () => {
      status?.stopping()
      if (status !== undefined && drainDelayMs > 0) await sleep(drainDelayMs)
      for (const listener of listeners) listener.stopAccepting()
      await tier?.drain(resolved.health.ackTimeoutMs)
      for (const step of cleanup.splice(0).reverse()) await step()
    })()
    return closing
  }
  try {
    let embedded: EmbeddedBrokers | undefined
    const host = listenHost(resolved)
    if (resolved.broker1 === undefined || resolved.broker2 === undefined) {
      embedded = await startEmbeddedBrokers(embeddedPorts(resolved))
      cleanup.push(() => embedded!.close())
      logger.info({ broker1: embedded.urls[0], broker2: embedded.urls[1], host },
        `no brokers configured: two embedded Aedes brokers serve as Broker1 and Broker2${resolved.listen.host === undefined ? '; terminals are taken on 127.0.0.1 only (--host opens more)' : ''}`)
    }
    const broker1 = resolved.broker1 ?? { ...brokerDefaults, url: embedded!.urls[0] }
    const broker2 = resolved.broker2 ?? { ...brokerDefaults, url: embedded!.urls[1] }

    const dataDir = openDataDir(resolved.data)
    cleanup.push(async () => dataDir.release())
    // Aedes' default in-memory persistence: the brokers hold every terminal's session (README
    // "What a persistent terminal can rely on"); Aedes keeps only the tier's own retained
    // $SYS/dual-broker/ topics and, per connection, the QoS 2 exchanges it is holding.
    // The listeners close connections without CONNECT after limits.connectTimeoutMs; Aedes' own timer stays behind them.
    const connectTimeout = Math.max(AEDES_CONNECT_TIMEOUT_MS, resolved.limits.connectTimeoutMs + 1000)
    const aedes = await Aedes.createBroker({ drainTimeout: resolved.limits.drainTimeoutMs, connectTimeout })
    cleanup.push(() => new Promise<void>((resolve) => aedes.close(() => resolve())))
    logRefusals(aedes, logger)
    const { listen, http, data: _data, logLevel: _logLevel, limits, embeddedPorts: _embeddedPorts, ...pluginOptions } = resolved
    const store = { ...pluginOptions.store, path: pluginOptions.store?.path ?? join(resolved.data, 'pending') }
    const started = await dualBroker(aedes, { ...pluginOptions, limits: pluginLimits(limits), store, broker1, broker2, logger }).catch((error: unknown) => {
      throw dataDir.explain(error)
    })
    dataDir.claim()
    tier = started
    cleanup.push(() => started.close())
    // Closed with the tier, last registered first.
    await started.register(sysTopics)
    status = http.port === undefined ? undefined : await started.register(statusPlugin, { host: http.host, port: http.port })

    const fds = fdBudget(limits.maxConnections, 1 + Number(listen.wsPort !== undefined) + Number(listen.tls !== undefined), logger)
    const opened = await openListeners(aedes, { ...listen, host }, { limits, logger, refusals: coreOf(started).caps.refusals, ...(fds !== undefined && { fds }) }, listeners)
    cleanup.push(async () => { for (const listener of listeners) await listener.close() })
    let running = resolved
    const reconfigure = (config: AccessTierConfig | ResolvedServerConfig): { applied: string[], restartNeeded: string[] } => {
      const wanted = serverSchema.safeParse(config)
      if (!wanted.success) throw new ConfigError(formatIssues(wanted.error, config))
      const { applied, restartNeeded, next } = planReload(running, wanted.data)
      started.reconfigure({ policies: next.policies, defaultPolicy: next.defaultPolicy, health: next.health, limits: pluginLimits(next.limits) })
      for (const listener of listeners) listener.setLimits(next.limits)
      setDrainTimeout(aedes, next.limits.drainTimeoutMs)
      if (logger.level !== undefined) logger.level = next.logLevel
      running = next
      return { applied, restartNeeded }
    }
    return {
      tier: started,
      aedes,
      addresses: { ...opened, ...(status !== undefined && { http: status.address }), broker1: broker1.url, broker2: broker2.url, embeddedBrokers: embedded !== undefined },
      reconfigure,
      close: () => close()
    }
  } catch (error) {
    await close(0) // nothing was served yet: no balancer to wait for
    throw error
  }
}

/** The terminals' listeners: TCP always, WebSocket and TLS when configured. Each one opened is added to `opened`. */
async function openListeners (aedes: Aedes, listen: ResolvedServerConfig['listen'] & { host: string }, options: ListenOptions, opened: Listener[]): Promise<{ mqtt: Address, ws?: Address, mqtts?: Address }> {
  const add = (listener: Listener): Address => {
    opened.push(listener)
    return listener.address
  }
  const mqtt = add(await listenTcp(aedes, listen.host, listen.port, options))
  const ws = listen.wsPort === undefined ? undefined : add(await listenWs(aedes, listen.host, listen.wsPort, options))
  const mqtts = listen.tls === undefined ? undefined : add(await listenTcp(aedes, listen.host, listen.tls.port, { ...options, tls: listen.tls }))
  return { mqtt, ...(ws !== undefined && { ws }), ...(mqtts !== undefined && { mqtts }) }
}

/** The limits the plugin enforces per terminal; the others are the listeners'. */
function pluginLimits (limits: ResolvedServerConfig['limits']): Record<string, number> {
  return Object.fromEntries(Object.keys(terminalLimitsSchema.shape).map((key) => [key, limits[key as keyof typeof limits]]))
}

/** Aedes' default time for a CONNECT to arrive. */
const AEDES_CONNECT_TIMEOUT_MS = 30_000

const brokerDefaults = { clientIdPrefix: '', protocolVersion: 4 as const, rejectUnauthorized: true }
