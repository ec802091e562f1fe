import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { DualBroker, DualBrokerEvents, DualBrokerOptions } from '../../src/index.js'
import { record, type Recorder } from './recorder.js'
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

/**
 * Restarts Broker1, records `filter` there before the tier fails back, waits for the failback,
 * then sends a marker through `terminal` and waits until it reached Broker1: whatever the replay
 * sent is recorded by then (Broker1 gets the tier's publishes in order).
 */
export async function failBackAndRecord (
  t: Test, tier: DualBroker, broker1: { url: string, restart: () => Promise<void> },
  terminal: { publishAsync: (topic: string, payload: string, options: { qos: 1 }) => Promise<unknown> }, filter: string, marker: string
): Promise<Recorder> {
  const failback = nextEvent(tier, 'failback')
  await broker1.restart()
  const atBroker1 = await record(t, broker1.url, filter)
  await failback
  await terminal.publishAsync(marker, 'after failback', { qos: 1 })
  await atBroker1.waitForTopic(marker)
  return atBroker1
}
