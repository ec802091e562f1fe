import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import persistenceLevel from 'aedes-persistence-level'
import { Level } from 'level'
import { ConfigError } from './config/errors.js'
import { formatIssues } from './config/problems.js'
import { type AccessTierConfig, type ResolvedServerConfig, serverSchema } from './config/schema.js'
import { startEmbeddedBrokers, type EmbeddedBrokers } from './embedded-brokers.js'
import { type Address, listenTcp, listenWs } from './listeners.js'
import { type Logger, silentLogger } from './logger.js'
import { type DualBroker, dualBroker } from './plugin.js'
import { statusServer } from '../plugins/status/index.js'
import { sysTopicsPlugin } from '../plugins/sys-topics.js'

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
  close: () => Promise<void>
}

/**
 * The standalone server: Aedes with its persistence in the data dir, the
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
  const close = async (): Promise<void> => {
    for (const step of cleanup.splice(0).reverse()) await step()
  }
  try {
    let embedded: EmbeddedBrokers | undefined
    if (resolved.broker1 === undefined || resolved.broker2 === undefined) {
      embedded = await startEmbeddedBrokers()
      cleanup.push(() => embedded!.close())
      logger.info({ broker1: embedded.urls[0], broker2: embedded.urls[1] }, 'no brokers configured: two embedded Aedes brokers serve as Broker1 and Broker2')
    }
    const broker1 = resolved.broker1 ?? { ...brokerDefaults, url: embedded!.urls[0] }
    const broker2 = resolved.broker2 ?? { ...brokerDefaults, url: embedded!.urls[1] }

    mkdirSync(resolved.data, { recursive: true })
    const persistence = persistenceLevel(new Level(join(resolved.data, 'aedes')))
    const aedes = await Aedes.createBroker({ persistence, drainTimeout: resolved.limits.drainTimeoutMs })
    cleanup.push(async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await persistence.destroy()
    })
    const { listen, http, data: _data, logLevel: _logLevel, limits, ...pluginOptions } = resolved
    const store = { ...pluginOptions.store, path: pluginOptions.store?.path ?? join(resolved.data, 'pending') }
    const tier = await dualBroker(aedes, { ...pluginOptions, limits: { maxInflight: limits.maxInflight }, store, broker1, broker2, logger })
    cleanup.push(() => tier.close())
    const sysTopics = sysTopicsPlugin(tier, aedes)
    cleanup.push(sysTopics.close)
    const status = http.port === undefined ? undefined : await statusServer(tier, { host: http.host, port: http.port })
    if (status !== undefined) cleanup.push(status.close)

    const listenOptions = { limits, logger }
    const mqtt = await listenTcp(aedes, listen.host, listen.port, listenOptions)
    cleanup.push(mqtt.close)
    const ws = listen.wsPort === undefined ? undefined : await listenWs(aedes, listen.host, listen.wsPort, listenOptions)
    if (ws !== undefined) cleanup.push(ws.close)
    const mqtts = listen.tls === undefined ? undefined : await listenTcp(aedes, listen.host, listen.tls.port, { ...listenOptions, tls: listen.tls })
    if (mqtts !== undefined) cleanup.push(mqtts.close)
    return {
      tier,
      aedes,
      addresses: { mqtt: mqtt.address, ...(ws !== undefined && { ws: ws.address }), ...(mqtts !== undefined && { mqtts: mqtts.address }), ...(status !== undefined && { http: status.address }), broker1: broker1.url, broker2: broker2.url, embeddedBrokers: embedded !== undefined },
      close
    }
  } catch (error) {
    await close()
    throw error
  }
}

const brokerDefaults = { clientIdPrefix: '', protocolVersion: 4 as const, rejectUnauthorized: true }
