import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { DualBroker, DualBrokerEvents, DualBrokerOptions } from '../../src/index.js'
import { startTier, type TierUnderTest } from './tier.js'

/** A temporary folder removed at teardown. */
export function tempDir (t: Test, prefix = 'dual-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Health timing for failover tests: long enough a failback delay to re-attach recorders after a restart. */
export const FAILOVER_HEALTH = { keepaliveSeconds: 1, connectTimeoutMs: 2000, ackTimeoutMs: 3000, failbackDelayMs: 1000, reconnectPeriodMs: 100 }

/** The tier with a pending store on disk, as the server runs it. */
export function startDurableTier (t: Test, broker1: string, broker2: string, plugin: Partial<DualBrokerOptions> = {}): Promise<TierUnderTest> {
  return startTier(t, broker1, broker2, {
    plugin: { health: FAILOVER_HEALTH, store: { path: join(tempDir(t), 'pending') }, ...plugin }
  })
}

/** The next time `tier` emits `event` (and `accept` agrees). */
export function nextEvent<E extends keyof DualBrokerEvents> (tier: DualBroker, event: E, accept: (...args: DualBrokerEvents[E]) => boolean = () => true): Promise<DualBrokerEvents[E]> {
  return new Promise((resolve) => {
    const listener = (...args: DualBrokerEvents[E]): void => {
      if (!accept(...args)) return
      tier.off(event, listener as never)
      resolve(args)
    }
    tier.on(event, listener as never)
  })
}
