/**
 * The plugin: `dualBroker(aedes, options)` and what it is typed with. The
 * standalone server is `aedes-dual-broker/server`; the operations plugins are
 * `aedes-dual-broker/plugins/…`. This entry imports neither.
 */
export { dualBroker, DualBroker, tierPlugin, type TierPlugin, type PluginExtras } from './plugin.js'
export { LOCAL_TOPIC_PREFIX } from './local-topics.js'
export type { DualBrokerEvents, TierState, TierMode, TierCounters, BrokerName, BrokerState, BrokerStatus, UpstreamProtocol } from './events.js'
export type {
  DualBrokerOptions, AccessTierConfig, BrokerOptions, HealthOptions, PolicyMode, PolicyRuleOptions, StoreOptions,
  ReplayOptions, DedupOptions, TerminalLimitsOptions, WillOptions, SessionOptions, ServerLimitsOptions, TlsListenOptions
} from './options.js'
export type { ResolvedOptions, PolicyRule } from './config/schema.js'
export { ConfigError } from './config/errors.js'
export { DualBrokerError, ConnectRefusedError, ERROR_CODES, type DualBrokerErrorCode } from './errors.js'
export { StoreFullError, StoreClosedError } from './store/errors.js'
export { MemoryPendingStore } from './store/memory-store.js'
export type {
  PendingStore, PendingStoreEvents, PendingMessage, StoredMessage, StoreStats, DroppedEvent, MemoryPendingStoreOptions, StoreBounds
} from './store/types.js'
export type { Logger } from './logger.js'
