export { LevelPendingStore } from './level-store.js'
export { MemoryPendingStore } from './memory-store.js'
export { StoreClosedError, StoreFullError } from './errors.js'
export type {
  DroppedEvent, FsyncMode, LevelPendingStoreOptions, MemoryPendingStoreOptions, OverflowPolicy, PendingMessage, PendingStore,
  PendingStoreEvents, StoreBounds, StoreLogger, StoredMessage, StoreStats
} from './types.js'
