export { LevelPendingStore } from './level-store.js'
export { StoreClosedError, StoreFullError } from './errors.js'
export type {
  DroppedEvent, FsyncMode, LevelPendingStoreOptions, OverflowPolicy, PendingMessage, PendingStore,
  PendingStoreEvents, StoreLogger, StoredMessage, StoreStats
} from './types.js'
