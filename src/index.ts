export { dualBroker, DualBroker, LOCAL_TOPIC_PREFIX, type PluginExtras } from './plugin.js'
export type { DualBrokerEvents, TierState, TierMode, BrokerName, BrokerState, BrokerStatus } from './events.js'
export type {
  DualBrokerOptions, AccessTierConfig, BrokerOptions, HealthOptions, PolicyMode, PolicyRuleOptions, StoreOptions,
  ReplayOptions, DedupOptions, TerminalLimitsOptions, ServerLimitsOptions, TlsListenOptions
} from './options.js'
export type { ResolvedOptions, PolicyRule } from './config/schema.js'
export { ConfigError } from './config/errors.js'
export type { Logger } from './logger.js'
export { createAccessTier, type AccessTier, type Address } from './server.js'
