import type { Logger } from '../logger.js'
import type { TierCounters } from '../state.js'
import type { OutgoingPublish, PublishStore } from '../routing/outbox.js'
import type { Policy } from '../routing/routing-table.js'
import type { PendingStore } from '../store/index.js'

/**
 * Where routed publishes enter the pending store: it counts what is being
 * appended, so that a replay knows when nothing more is on its way in, and
 * remembers the last write error for `tier.state.store`.
 */
export class StoreSink implements PublishStore {
  /** The last store write error, until a write succeeds again. */
  error: string | undefined
  /** Appends between their call and their commit. */
  appending = 0
  private quietWaiters: Array<() => void> = []

  constructor (readonly store: PendingStore, private readonly counters: TierCounters, private readonly logger: Logger) {}

  append (message: OutgoingPublish, policy: Policy, anyBroker: boolean): Promise<unknown> {
    const now = Date.now()
    this.appending++
    return this.store.append({
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      retain: message.retain,
      clientId: message.clientId,
      acceptedAt: now,
      ...(policy.ttl !== undefined && { expiresAt: now + policy.ttl }),
      ...(anyBroker && { anyBroker }),
      ...(message.id !== undefined && { id: message.id })
    }).then(() => {
      this.counters.stored++
      this.error = undefined
    }, (err: Error) => {
      // Not acknowledged to the terminal (it is disconnected and resends): said once per failure streak.
      if (this.error === undefined) this.logger.error({ err: err.message }, 'pending store write failed')
      this.error = err.message
      throw err
    }).finally(() => {
      if (--this.appending > 0) return
      for (const wake of this.quietWaiters.splice(0)) wake()
    })
  }

  /** Resolves when no append is under way. */
  whenQuiet (): Promise<void> {
    if (this.appending === 0) return Promise.resolve()
    return new Promise((resolve) => this.quietWaiters.push(resolve))
  }
}
