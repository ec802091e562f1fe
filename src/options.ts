/**
 * The options of `dualBroker(aedes, options)` and `createAccessTier(config)`, written out so that
 * editors show what each key does. The zod schemas in src/config/schema.ts validate them; the
 * checks at the end of this file fail to compile when the two disagree in either direction.
 */
import type { z } from 'zod'
import type { pluginSchema, serverSchema } from './config/schema.js'
import type { Qos } from './mqtt/protocol.js'
import type { PendingStore } from './store/types.js'

/** What a stored or live publish does while Broker1 is down (README, "Per-topic policy"). */
export type PolicyMode = 'failover' | 'queue' | 'both' | 'drop'

/** One upstream broker. */
export interface BrokerOptions {
  /** `mqtt://`, `mqtts://`, `ws://` or `wss://` URL of the broker, e.g. `"mqtt://10.0.0.1:1883"`. */
  url: string
  /**
   * Replaces every terminal's own user name at this broker: for brokers that trust the tier
   * instead of each terminal. Without it, the terminals' credentials pass through unchanged.
   */
  username?: string
  /** Goes with `username`; never logged. */
  password?: string
  /** Credentials of the tier's own sessions here (health link, replay); default `username`/`password`. */
  service?: {
    username?: string
    password?: string
  }
  /** Prefixed to every upstream client id, for a broker shared with other tiers. Default `""`. */
  clientIdPrefix?: string
  /**
   * Upstream MQTT version: `auto` (default) speaks MQTT 5 where the broker accepts it and 3.1.1
   * where it refuses, decided each time the broker comes back; or 4 (3.1.1) or 5 always.
   * Over MQTT 5, duplicates are recognised by message id, and `limits.receiveMaximum`,
   * `wills.delaySeconds` and `sessions.expirySeconds` apply.
   */
  protocolVersion?: 4 | 5 | 'auto'
  /** PEM file of the CA that signs the broker's certificate (`mqtts://`, `wss://`). */
  ca?: string
  /** PEM client certificate the tier presents to the broker. */
  cert?: string
  /** PEM private key of `cert`. */
  key?: string
  /** Verify the broker's certificate. Default true; turn off only for a test bench. */
  rejectUnauthorized?: boolean
  /**
   * IP addresses the terminals' upstream sockets to this broker are opened from, the least used
   * first. One source address holds about 28k sockets to one broker address (its ephemeral port
   * range); each address in the pool adds as many. The tier's own sessions (health link, replay)
   * connect from the first. Default: the system chooses.
   */
  localAddresses?: string[]
}

/** The tier's watch on both brokers (README, "Failover, the pending store and failback"). */
export interface HealthOptions {
  /** Keepalive of the health link to each broker, in seconds; a frozen broker is noticed within ~1.5×. Default 1. */
  keepaliveSeconds?: number
  /** Longest a terminal's CONNECT waits for a broker before going on without it. Default 5000 ms. */
  connectTimeoutMs?: number
  /** Longest a SUBSCRIBE or a publish waits for a broker's ack; a publish past it marks the broker suspect. Default 5000 ms. */
  ackTimeoutMs?: number
  /** Broker1 must be up this long, after a completed CONNACK, before traffic returns to it. Default 2000 ms. */
  failbackDelayMs?: number
  /**
   * After `failbackDelayMs`, the longest failback waits for the sessions of connected terminals to be
   * whole at Broker1 (a Broker1 that came back without them). Default 10000 ms; 0 = do not wait.
   */
  sessionRestoreTimeoutMs?: number
  /** Retry period of lost sessions and health links. Default 500 ms. */
  reconnectPeriodMs?: number
  /** Live publishes a lost broker acked this recently are sent again to the next target; 0 = off. Default 500 ms. */
  resendWindowMs?: number
}

/** One per-topic rule; the first whose filter matches a topic wins. */
export interface PolicyRuleOptions {
  /** MQTT topic filter, `+` and `#` as whole levels, e.g. `"alarms/#"`. */
  topic: string
  /** What its publishes do while Broker1 is down. */
  mode: PolicyMode
  /** Stored messages expire this long after they were accepted: ms, or a text such as `"10m"`, `"1h"`. */
  ttl?: number | string
  /** Forward at no higher QoS than this. */
  maxQos?: Qos
}

/** The durable pending store (README, "The pending store"). */
export interface StoreOptions {
  /** Folder of the LevelDB store; without it the plugin keeps no store (the server uses `<data>/pending`). */
  path?: string
  /** `always`: one synced write per message; `batch` (default): every group synced; `never`: no fsync. */
  fsync?: 'always' | 'batch' | 'never'
  /** Most messages kept. Default 1,000,000. */
  maxMessages?: number
  /** Most bytes kept: a number or a text such as `"512MiB"`. Default `1GiB`. */
  maxBytes?: number | string
  /** At a bound: discard the oldest (default, counted and logged) or refuse new publishes (not acknowledged). */
  overflow?: 'drop-oldest' | 'reject-new'
}

/** How the store drains to Broker1. */
export interface ReplayOptions {
  /** Stored publishes in flight at once during a replay. Default 100. */
  window?: number
  /** Messages per second; 0 (default) = as fast as Broker1 acknowledges. */
  ratePerSecond?: number
}

/** Removing the copies a terminal would otherwise get twice (README, "Duplicates"). */
export interface DedupOptions {
  /** The same topic and payload from the other broker within this window is a copy (MQTT 3.1.1 upstreams); 0 = off. Default 2000 ms. */
  windowMs?: number
  /** Message ids and digests remembered per terminal; 0 turns deduplication off. Default 1000. */
  maxEntries?: number
}

/** Limits per terminal that the plugin applies. */
export interface TerminalLimitsOptions {
  /** QoS 1 publishes of one terminal not yet safe; past it the tier stops reading its socket until some are. Default 1000. */
  maxInflight?: number
  /**
   * Over MQTT 5: the QoS 1/2 deliveries a broker may have unacknowledged to one terminal (its
   * Receive Maximum); the broker holds the rest, in order. Default 100.
   */
  receiveMaximum?: number
  /** Filters in one SUBSCRIBE; the ones past it get 0x80; 0 = no limit. Default 256. */
  maxFiltersPerSubscribe?: number
  /** Subscriptions one terminal holds; further filters get 0x80; 0 = no limit. Default 1000. */
  maxSubscriptionsPerTerminal?: number
  /** Bytes of a topic or filter: a longer filter gets 0x80, a longer PUBLISH topic closes the connection; 0 = no limit. Default 4096. */
  maxTopicLength?: number
  /** Bytes of a client id; a longer one gets CONNACK return code 2; 0 = no limit. Default 256. */
  maxClientIdLength?: number
}

/** Terminals' wills at a broker that speaks MQTT 5 (README, "Wills"). */
export interface WillOptions {
  /**
   * Seconds a broker waits before it publishes the will of a terminal whose upstream connection
   * broke (its node was lost); a terminal back within them, through any node, publishes none.
   * Default 30; 0 = at once. A 3.1.1 broker publishes at once.
   */
  delaySeconds?: number
}

/** Persistent terminals' sessions at a broker that speaks MQTT 5. */
export interface SessionOptions {
  /** How long a broker keeps a persistent (clean = false) terminal's session after it left: seconds, or `"never"` (default). */
  expirySeconds?: number | 'never'
}

/** Options of `dualBroker(aedes, options)`. */
export interface DualBrokerOptions {
  /** The primary broker: takes every publish while it is up. */
  broker1: BrokerOptions
  /** The standby broker: every terminal is online here too, and takes over when Broker1 is lost. */
  broker2: BrokerOptions
  health?: HealthOptions
  /** Per-topic rules for the time Broker1 is down; the first match wins. Default none. */
  policies?: PolicyRuleOptions[]
  /** The mode of topics no rule matches. Default `both`. */
  defaultPolicy?: PolicyMode
  /**
   * The LevelDB pending store (`store.path`) and its bounds. Without it, and without `pendingStore`, the
   * plugin keeps no pending store: publishes wait in memory while no broker takes them.
   */
  store?: StoreOptions
  /**
   * A pending store of the deployment's own, used instead of LevelDB, in the manner of Aedes'
   * `persistence`: any object keeping the `PendingStore` contract, such as `MemoryPendingStore`
   * (not durable). Give it unopened: the tier opens it at start and closes it with itself. Its
   * bounds are its own, so it is a configuration error together with `store`.
   */
  pendingStore?: PendingStore
  replay?: ReplayOptions
  dedup?: DedupOptions
  limits?: TerminalLimitsOptions
  wills?: WillOptions
  sessions?: SessionOptions
  node?: NodeOptions
}

/** The node's own session at both brokers: the deployment's `aedes.publish` and `aedes.subscribe` go through it. */
export interface NodeOptions {
  /**
   * Its client id at both brokers (after `clientIdPrefix`). Default `dual-broker-node-` + the Aedes
   * instance's `id`. Must be unique per node: two nodes with one id take the session from each other.
   */
  clientId?: string
}

/** Terminals over TLS. */
export interface TlsListenOptions {
  /** Default 8883. */
  port?: number
  /** PEM private key file. */
  key: string
  /** PEM certificate (chain) file. */
  cert: string
  /** PEM CA file of the terminals' client certificates. */
  ca?: string
  /** Require a client certificate signed by `ca`. Default false. */
  requestCert?: boolean
}

/** The server's limits: the plugin's, and those of each listener. */
export interface ServerLimitsOptions extends TerminalLimitsOptions {
  /** Largest packet a terminal may send (checked on the fixed header): bytes or a text such as `"256KiB"`; 0 = no limit. Default 1 MiB. */
  maxPacketSize?: number | string
  /** Terminal connections open at once, per listener; 0 = no limit. Default 10,000. */
  maxConnections?: number
  /** New connections accepted per second, per listener; 0 = no limit. Default 1000. */
  connectionRatePerSecond?: number
  /** A terminal that reads nothing of what it is sent for this long is disconnected. Default 30,000 ms. */
  drainTimeoutMs?: number
  /** A connection that has not sent CONNECT within this long is closed; 0 = Aedes' own 30 s. Default 10,000 ms. */
  connectTimeoutMs?: number
  /** Connections open at once from one source address, per listener; 0 = no limit. Default 1000. */
  maxConnectionsPerSource?: number
  /** Connections from one source address that have not sent CONNECT yet, per listener; 0 = no limit. Default 100. */
  maxPendingConnectsPerSource?: number
}

/** Configuration of `createAccessTier(config)`, the config file and the command line. */
export interface AccessTierConfig extends Omit<DualBrokerOptions, 'broker1' | 'broker2' | 'limits' | 'pendingStore'> {
  /** With neither broker1 nor broker2, two embedded Aedes brokers stand in on 127.0.0.1 (demo mode). */
  broker1?: BrokerOptions
  broker2?: BrokerOptions
  /** Ports of the embedded brokers; default `listen.port` + 1 and + 2; 0 = any free port. */
  embeddedPorts?: [number, number]
  /** The terminals' listeners. */
  listen?: {
    /** Default 0.0.0.0; 127.0.0.1 in demo mode. */
    host?: string
    /** MQTT over TCP. Default 1883; 0 = any free port. */
    port?: number
    /** MQTT over WebSocket; off unless given. */
    wsPort?: number
    /** MQTT over TLS; off unless given. */
    tls?: TlsListenOptions
  }
  limits?: ServerLimitsOptions
  /** The node's state: the pending store (terminals' sessions live at the brokers). Default `./data`. */
  data?: string
  /** `/health`, `/metrics` and the status page. */
  http?: {
    /** Default 127.0.0.1: the operators' network, not the terminals'. */
    host?: string
    /** Off unless given; 0 = any free port. */
    port?: number
    /**
     * On a graceful stop (SIGTERM), `/health` answers 503 this long before the listeners close,
     * so that a load balancer stops sending terminals here first. Default 0.
     */
    drainDelayMs?: number
  }
  /** Default `info`. */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

/** True only when A and B are the same type (not merely assignable to each other). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
/** Compiles only when given `true`. */
type Assert<T extends true> = T

// The written types and the schemas' input types, both ways: a key added, dropped or retyped on one side fails here.
export type CheckedOptions = Assert<Equals<Normal<DualBrokerOptions>, Normal<z.input<typeof pluginSchema>>>>
export type CheckedConfig = Assert<Equals<Normal<AccessTierConfig>, Normal<z.input<typeof serverSchema>>>>

/** The same type flattened, so that interfaces, intersections and aliases compare by their members. */
type Normal<T> = T extends readonly unknown[] ? { [K in keyof T]: Normal<T[K]> } : T extends object ? { [K in keyof T]: Normal<T[K]> } : T
