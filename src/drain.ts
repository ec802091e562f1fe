/**
 * `aedes-dual-broker drain`: replays a lost node's pending store to Broker1, in order, with the
 * same replay the node itself runs at failback (src/failover/replayer.ts), and returns once the
 * store is empty. For a node that will not come back on its data dir (README "Several nodes").
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { DrainConfig } from './config/drain.js'
import { type ResolvedServerConfig, storeSchema } from './config/schema.js'
import { newCounters } from './failover/counters.js'
import { Replayer } from './failover/replayer.js'
import type { Logger } from './logger.js'
import { LevelPendingStore } from './store/index.js'
import { BrokerEndpoint } from './upstream/broker-endpoint.js'
import { BrokerHealth } from './upstream/broker-health.js'

/** A drain that cannot start or finish; the CLI prints the message and exits 1. */
export class DrainError extends Error {}

export interface DrainReport { replayed: number, durationMs: number }

export interface Drain {
  /** Resolves once the store is empty; rejects with a DrainError. */
  readonly done: Promise<DrainReport>
  /** Stops replaying; the messages not yet acked stay in the store. */
  stop: () => Promise<void>
}

/** The store a server with this configuration keeps: `store.path`, else `<data>/pending`. */
export function storePathOf (config: Pick<ResolvedServerConfig, 'store' | 'data'>): string {
  return config.store?.path ?? join(config.data, 'pending')
}

/**
 * Opens the store (a store another process holds is refused, naming it), waits for Broker1 and
 * replays everything to it, again after each interruption, until nothing is left.
 * `say` gets the progress lines; `logger` the replay's own warnings.
 */
export function drainStore (config: DrainConfig, say: (line: string) => void, logger: Logger): Drain {
  const path = storePathOf(config)
  const store = new LevelPendingStore({ ...storeSchema.parse({}), ...config.store, path, logger })
  const health = new BrokerHealth(new BrokerEndpoint('broker1', config.broker1, config.health))
  let replayer: Replayer | undefined
  let stopped = false
  /** Wakes a wait for Broker1 when the drain is stopped. */
  const wake = new Set<() => void>()

  store.on('dropped', ({ reason, count }) => say(`${count} message(s) not replayed: ${reason}`))
  const brokerUp = (): Promise<boolean> => new Promise((resolve) => {
    if (stopped || health.state === 'up') return resolve(!stopped)
    const waiting = (): void => say(`waiting for Broker1 at ${health.endpoint.safeUrl}`)
    if (health.state === 'down') waiting()
    const settle = (up: boolean): void => {
      health.off('up', onUp)
      health.off('down', waiting)
      wake.delete(onStop)
      resolve(up)
    }
    const onUp = (): void => settle(true)
    const onStop = (): void => settle(false)
    health.on('up', onUp)
    health.once('down', waiting)
    wake.add(onStop)
  })

  const run = async (): Promise<DrainReport> => {
    // LevelDB would create a missing folder: a mistyped path must not pass as an empty store.
    if (!existsSync(path)) throw new DrainError(`no pending store at ${path} (check --data or store.path)`)
    try {
      await store.open()
    } catch (err) {
      const locked = causes(err).some((cause) => (cause as { code?: unknown }).code === 'LEVEL_LOCKED')
      throw new DrainError(locked
        ? `pending store at ${path} is held by another process (a node still running on this data dir?): stop it first, or let it replay the store itself`
        : (err as Error).message)
    }
    const started = Date.now()
    say(`draining ${store.count} message(s), ${store.bytes} bytes, from ${path} to ${health.endpoint.safeUrl}`)
    health.start()
    const counters = newCounters()
    const gate = { appending: () => 0, whenQuiet: () => Promise.resolve(), caughtUp: () => {} }
    while (store.count > 0) {
      if (!await brokerUp()) break
      replayer = new Replayer({ health, store, replay: config.replay, accepts: () => true, gate, counters, logger })
      replayer.on('progress', ({ replayed, pending }) => say(`replayed ${replayed}, ${pending} pending`))
      const drained = await replayer.run()
      if (drained || stopped) break
      // Broker1 went away mid-replay: what it had not acked is still in the store, in order.
      say(`replay interrupted with ${store.count} message(s) left; resuming when Broker1 is up`)
      if (health.state === 'up') await new Promise((resolve) => setTimeout(resolve, config.health.reconnectPeriodMs))
    }
    const left = store.count
    await health.close()
    await store.close()
    if (left > 0) throw new DrainError(`stopped with ${left} message(s) left in ${path}`)
    const report = { replayed: counters.replayed, durationMs: Date.now() - started }
    say(`drained: ${report.replayed} message(s) replayed in ${(report.durationMs / 1000).toFixed(1)} s; ${path} is empty`)
    return report
  }

  const done = run().catch(async (err: unknown) => {
    await health.close()
    await store.close()
    throw err
  })
  return {
    done,
    async stop () {
      stopped = true
      for (const stop of wake) stop()
      replayer?.stop()
      await done.catch(() => {})
    }
  }
}

/** An error and its causes, outermost first. */
function causes (err: unknown): unknown[] {
  const chain: unknown[] = []
  for (let at = err; at !== undefined && at !== null && chain.length < 10; at = (at as { cause?: unknown }).cause) chain.push(at)
  return chain
}
