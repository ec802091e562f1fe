import { isIP } from 'node:net'
import { z } from 'zod'
import type { PendingStore } from '../store/types.js'
import { duration, size } from './units.js'

/** MQTT 5's "never expires" (§3.1.2.11.2), the meaning of clean = false in 3.1.1. */
export const SESSION_NEVER_EXPIRES = 0xffffffff
/** See README "Performance": where a larger window stopped paying on the bench. */
const RECEIVE_MAXIMUM = 100
/** See README "Wills": several reconnect backoffs of a device SDK and a load balancer's health check. */
const WILL_DELAY_SECONDS = 30

const URL_PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'])

const BROKER_URL = 'a broker URL like "mqtt://127.0.0.1:1883"'
const brokerUrl = z.string({ error: `expected ${BROKER_URL}` }).refine((value) => {
  try {
    const url = new URL(value)
    return URL_PROTOCOLS.has(url.protocol) && url.hostname !== ''
  } catch {
    return false
  }
}, { error: (issue) => `${JSON.stringify(issue.input)} is not ${BROKER_URL}` })

/** An MQTT topic filter: '+' and '#' only as whole levels, '#' only last [MQTT-4.7.1-2] [MQTT-4.7.1-3]. */
export const topicFilter = z.string().min(1).refine((filter) => {
  const levels = filter.split('/')
  return levels.every((level, i) =>
    (!level.includes('#') || (level === '#' && i === levels.length - 1)) &&
    (!level.includes('+') || level === '+'))
}, { error: (issue) => `${JSON.stringify(issue.input)} is not a valid MQTT topic filter` })

export const policyModes = ['failover', 'queue', 'both', 'drop'] as const
export const policyMode = z.enum(policyModes)
export type PolicyMode = z.infer<typeof policyMode>

export const brokerSchema = z.strictObject({
  url: brokerUrl,
  /** Replaces the terminal's own credentials at this broker (a deliberate choice: see README). */
  username: z.string().optional(),
  password: z.string().optional(),
  /**
   * Credentials of the tier's own sessions at this broker (health link, replay of the pending
   * store). Defaults to `username`/`password`, else none.
   */
  service: z.strictObject({
    username: z.string().optional(),
    password: z.string().optional()
  }).optional(),
  /** Prefixed to upstream client ids, for a broker shared with other tiers. */
  clientIdPrefix: z.string().default(''),
  /**
   * The MQTT version of the upstream sessions: `auto` tries MQTT 5 and falls back to 3.1.1 where
   * the broker refuses it, decided again each time the broker comes back (see BrokerHealth).
   */
  protocolVersion: z.literal([4, 5, 'auto'], { error: 'expected 4 (MQTT 3.1.1), 5 or "auto"' }).default('auto'),
  /** PEM file paths for mqtts:// upstreams. */
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
  rejectUnauthorized: z.boolean().default(true),
  /**
   * Source addresses of the terminals' upstream sockets to this broker, used least-used first:
   * each one adds a source address's ephemeral port range (README "Several nodes"). The tier's
   * own sessions (health link, replay) connect from the first.
   */
  localAddresses: z.array(z.string().refine((value) => isIP(value) !== 0, {
    error: (issue) => `${JSON.stringify(issue.input)} is not an IP address`
  })).min(1, { error: 'expected at least one IP address (leave the key out for the system\'s choice)' }).optional()
})

export const healthSchema = z.strictObject({
  /** Keepalive of the tier's own health link to each broker; a silent broker is noticed within ~1.5×. */
  keepaliveSeconds: z.number().int().min(1).max(65535).default(1),
  connectTimeoutMs: z.number().int().positive().default(5000),
  ackTimeoutMs: z.number().int().positive().default(5000),
  failbackDelayMs: z.number().int().nonnegative().default(2000),
  /**
   * After `failbackDelayMs`, failback waits at most this long for the sessions of connected
   * terminals to be whole at Broker1 (re-subscribed, or the terminals asked to reconnect back).
   */
  sessionRestoreTimeoutMs: z.number().int().nonnegative().default(10000),
  reconnectPeriodMs: z.number().int().positive().default(500),
  /**
   * Live publishes a broker acked this recently are sent again when it is lost: a broker killed
   * right after acking may not have passed them on. 0 turns it off.
   */
  resendWindowMs: z.number().int().nonnegative().default(500)
})

export const policySchema = z.strictObject({
  topic: topicFilter,
  mode: policyMode,
  ttl: duration.optional(),
  maxQos: z.literal([0, 1, 2], { error: 'expected 0, 1 or 2' }).optional()
})
export type PolicyRule = z.output<typeof policySchema>

export const storeSchema = z.strictObject({
  /** Folder of the pending store; defaults to `<data>/pending` in the server. */
  path: z.string().min(1).optional(),
  fsync: z.enum(['always', 'batch', 'never']).default('batch'),
  maxMessages: z.number().int().positive().default(1_000_000),
  maxBytes: size.default(2 ** 30),
  overflow: z.enum(['drop-oldest', 'reject-new']).default('drop-oldest')
})

export const replaySchema = z.strictObject({
  window: z.number().int().min(1).max(65535).default(100),
  /** Messages per second; 0 means as fast as Broker1 acknowledges. */
  ratePerSecond: z.number().nonnegative().default(0)
})

export const dedupSchema = z.strictObject({
  /** Same topic and payload from the other broker within this window is a copy (MQTT 3.1.1 upstreams); 0 = off. */
  windowMs: z.number().int().nonnegative().default(2000),
  /** Message ids and digests remembered per terminal; 0 turns deduplication off. */
  maxEntries: z.number().int().nonnegative().default(1000)
})

export const terminalLimitsSchema = z.strictObject({
  /**
   * QoS 1 publishes of one terminal not yet safe (acked upstream or stored); past it the tier stops
   * reading that terminal's socket until some are (MQTT 3.1.1 cannot announce a receive window).
   */
  maxInflight: z.number().int().nonnegative().default(1000),
  /**
   * MQTT 5 upstream sessions: the Receive Maximum each announces, i.e. the QoS 1/2 deliveries a
   * broker may have unacknowledged to one terminal; past it the broker holds the rest, in order.
   * 3.1.1 sessions get the broker's own window (mosquitto: `max_inflight_messages`, 20).
   */
  receiveMaximum: z.number().int().min(1).max(65535).default(RECEIVE_MAXIMUM),
  // Caps on a hostile terminal (src/limits/terminal-caps.ts), each 0 = no limit. Far above what a
  // device needs (AWS IoT Core allows 8 filters per SUBSCRIBE, 50 subscriptions, 256-byte topics and
  // 128-byte client ids), yet a terminal at every cap holds at most ~4 MiB of topics.
  /** Filters in one SUBSCRIBE; the ones past it get 0x80. */
  maxFiltersPerSubscribe: z.number().int().nonnegative().default(256),
  /** Subscriptions one terminal holds; further filters get 0x80. */
  maxSubscriptionsPerTerminal: z.number().int().nonnegative().default(1000),
  /** Bytes of a topic or filter: a longer filter gets 0x80, a longer PUBLISH topic closes the connection. */
  maxTopicLength: z.number().int().nonnegative().default(4096),
  /** Bytes of a client id; a longer one is refused with CONNACK return code 2. */
  maxClientIdLength: z.number().int().nonnegative().default(256)
})

/** Where the upstream sessions speak MQTT 5 (README "Wills"): how long a broker waits before it publishes a terminal's will. */
export const willsSchema = z.strictObject({
  /**
   * The Will Delay Interval: a terminal whose upstream connection broke (its node lost) and that
   * is back within this many seconds, through any node, publishes no will. 0 = at once.
   */
  delaySeconds: z.number().int().min(0).max(SESSION_NEVER_EXPIRES).default(WILL_DELAY_SECONDS)
})

/** The upstream sessions of persistent (clean = false) terminals, where they speak MQTT 5. */
export const sessionsSchema = z.strictObject({
  /** Session Expiry Interval of a persistent terminal's upstream sessions, in seconds; `never` (default) as a 3.1.1 broker keeps them. */
  expirySeconds: z.union([z.literal('never'), z.number().int().min(1).max(SESSION_NEVER_EXPIRES - 1)], {
    error: 'expected "never" or a whole number of seconds from 1'
  }).default('never')
})

/** The node's own session at the brokers, which carries the deployment's `aedes.publish` and `aedes.subscribe`. */
export const nodeSchema = z.strictObject({
  /**
   * Its client id at both brokers (with `clientIdPrefix`); default `dual-broker-node-` + the Aedes
   * instance's `id`. Unique per node: two nodes with one id would take the session from each other.
   */
  clientId: z.string().min(1).max(256).optional()
})

const STORE_METHODS = ['open', 'append', 'read', 'iterate', 'delete', 'close', 'on', 'off'] as const
const STORE_GETTERS = ['count', 'bytes', 'stats'] as const

/** An instance of the `PendingStore` contract (src/store/types.ts), judged by its members as Aedes judges a persistence. */
const pendingStore = z.custom<PendingStore>((value) => {
  if (typeof value !== 'object' || value === null) return false
  const store = value as Record<string, unknown>
  return STORE_METHODS.every((name) => typeof store[name] === 'function') && STORE_GETTERS.every((name) => name in store)
}, { error: `expected a PendingStore instance (such as MemoryPendingStore): an object with ${STORE_METHODS.join(', ')} methods and ${STORE_GETTERS.join(', ')}` })

/** Options of `dualBroker(aedes, options)`. */
export const pluginSchema = z.strictObject({
  broker1: brokerSchema,
  broker2: brokerSchema,
  health: healthSchema.default(healthSchema.parse({})),
  policies: z.array(policySchema).default([]),
  defaultPolicy: policyMode.default('both'),
  store: storeSchema.optional(),
  /** The deployment's own pending store, used instead of LevelDB; not with `store` (its bounds are the instance's own). */
  pendingStore: pendingStore.optional(),
  replay: replaySchema.default(replaySchema.parse({})),
  dedup: dedupSchema.default(dedupSchema.parse({})),
  limits: terminalLimitsSchema.default(terminalLimitsSchema.parse({})),
  wills: willsSchema.default(willsSchema.parse({})),
  sessions: sessionsSchema.default(sessionsSchema.parse({})),
  node: nodeSchema.default({})
})

/** What `dualBroker` runs with, defaults applied. The documented input type is `DualBrokerOptions` in src/options.ts. */
export type ResolvedOptions = z.output<typeof pluginSchema>
export type BrokerOptions = z.output<typeof brokerSchema>
export type HealthOptions = z.output<typeof healthSchema>

const PORT = { error: 'expected an integer from 0 to 65535' }
const port = z.number(PORT).int(PORT).min(0, PORT).max(65535, PORT)

/** Configuration of `createAccessTier(config)`, the config file and the command line. */
// An instance is no configuration a file or a flag can give: the server keeps its LevelDB store.
export const serverSchema = pluginSchema.omit({ pendingStore: true }).extend({
  /** Without broker1 and broker2 the server starts two embedded Aedes brokers on 127.0.0.1 (see `embeddedPorts`). */
  broker1: brokerSchema.optional(),
  broker2: brokerSchema.optional(),
  /** Ports of the embedded brokers; default `listen.port` + 1 and + 2 (1884, 1885), 0 = any free port. */
  embeddedPorts: z.tuple([port, port]).optional(),
  listen: z.strictObject({
    /** Default 0.0.0.0, but 127.0.0.1 with the embedded brokers (a demo is not opened to the network unasked). */
    host: z.string().optional(),
    port: port.default(1883),
    wsPort: port.optional(),
    /** MQTT over TLS for terminals; `requestCert` turns on client-certificate authentication. */
    tls: z.strictObject({
      port: port.default(8883),
      key: z.string().min(1),
      cert: z.string().min(1),
      ca: z.string().min(1).optional(),
      requestCert: z.boolean().default(false)
    }).optional()
  }).default({ port: 1883 }),
  limits: terminalLimitsSchema.extend({
    /** Largest MQTT packet a terminal may send (e.g. "256KiB"); 0 = unlimited. */
    maxPacketSize: size.default(1024 * 1024),
    /** Terminal connections open at once, per listener; 0 = unlimited. */
    maxConnections: z.number().int().nonnegative().default(10_000),
    /** New connections accepted per second, per listener; 0 = unlimited. */
    connectionRatePerSecond: z.number().nonnegative().default(1000),
    /** A terminal that does not read what it is sent for this long is disconnected (Aedes' drainTimeout). */
    drainTimeoutMs: z.number().int().nonnegative().default(30_000),
    /** A connection that has not sent CONNECT within this long is closed; 0 = Aedes' own 30 s. */
    connectTimeoutMs: z.number().int().nonnegative().default(10_000),
    /** Connections open at once from one source address, per listener; 0 = unlimited. */
    maxConnectionsPerSource: z.number().int().nonnegative().default(1000),
    /** Connections from one source address that have not sent CONNECT yet, per listener; 0 = unlimited. */
    maxPendingConnectsPerSource: z.number().int().nonnegative().default(100)
  }).prefault({}),
  /** The node's whole state: the pending store (terminals' sessions live at the brokers). */
  data: z.string().min(1).default('./data'),
  http: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: port.optional(),
    /**
     * On a graceful stop, `/health` answers 503 this long before the listeners close, so that a
     * load balancer's health check takes the node out before its terminals are moved.
     */
    drainDelayMs: z.number().int().nonnegative().max(600_000).default(0)
  }).default({ host: '127.0.0.1', drainDelayMs: 0 }),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
})

/** The input type is `AccessTierConfig` in src/options.ts. */
export type ResolvedServerConfig = z.output<typeof serverSchema>
