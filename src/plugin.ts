import { EventEmitter } from 'node:events'
import type { Aedes } from './aedes/internals.js'
import { pluginSchema, type ResolvedOptions } from './config/schema.js'
import { ConfigError } from './config/errors.js'
import { formatIssues } from './config/problems.js'
import { TierCore } from './core.js'
import { PolicyTable } from './routing/routing-table.js'
import { DualBrokerError } from './errors.js'
import type { DualBrokerEvents, TierState } from './events.js'
import { type Logger, silentLogger } from './logger.js'
import type { DualBrokerOptions } from './options.js'

/** The part of the options `reconfigure` takes. */
const liveSchema = pluginSchema.pick({ policies: true, defaultPolicy: true, health: true, limits: true })

export interface PluginExtras {
  logger?: Logger
}

/**
 * A plugin of the tier, in fastify's manner: a function of the tier and its
 * options, built only on the tier's public API. What it returns is handed back
 * by `tier.register`; if that has a `close`, the tier calls it when it closes,
 * plugins in the reverse order of their registration. Name it with `tierPlugin`.
 */
export interface TierPlugin<Options = undefined, Exposed = void> {
  (tier: DualBroker, options: Options): Exposed | Promise<Exposed>
  /** Registered once per tier under this name. */
  readonly pluginName?: string
}

/** Names a plugin function (as fastify-plugin's `fp(fn, { name })` does): a tier registers a name once. */
export function tierPlugin<Options, Exposed> (name: string, plugin: (tier: DualBroker, options: Options) => Exposed | Promise<Exposed>): TierPlugin<Options, Exposed> {
  return Object.assign((tier: DualBroker, options: Options) => plugin(tier, options), { pluginName: name })
}

interface Closable { close: () => unknown }

const cores = new WeakMap<DualBroker, TierCore>()

/** The tier's parts, for the standalone server (server.ts) and the tests: not part of the API. */
export function coreOf (tier: DualBroker): TierCore {
  return cores.get(tier)!
}

/**
 * The access tier attached to one Aedes instance. Create it with
 * `dualBroker(aedes, options)`; README "Embedding in an existing Aedes" lists
 * its API: the events, `state`, `register`, `reconfigure`, `drain`, `close`.
 */
export class DualBroker extends EventEmitter<DualBrokerEvents> {
  readonly #plugins: Array<{ name: string, exposed: unknown }> = []
  #closing: Promise<void> | undefined

  /** `options`: as validated, defaults filled in. */
  constructor (readonly aedes: Aedes, readonly options: ResolvedOptions, logger: Logger) {
    super()
    cores.set(this, new TierCore(aedes, options, this, logger))
  }

  /** What the tier is doing now: a snapshot, safe to serialise (README "Events and state"). */
  get state (): TierState {
    return coreOf(this).state
  }

  /**
   * Registers a plugin (see `TierPlugin`) and resolves with what it returns.
   * A name registers once; a closing tier takes none.
   */
  async register<Options, Exposed> (plugin: TierPlugin<Options, Exposed>, ...[options]: undefined extends Options ? [Options?] : [Options]): Promise<Exposed> {
    const name = plugin.pluginName ?? plugin.name
    if (this.#closing !== undefined) throw new DualBrokerError('DUALBROKER_ERR_CLOSING', `plugin ${name}: the tier is closing`)
    if (this.#plugins.some((registered) => registered.name === name)) {
      throw new DualBrokerError('DUALBROKER_ERR_PLUGIN_REGISTERED', `plugin ${name} is registered already`)
    }
    const entry = { name, exposed: undefined as unknown }
    this.#plugins.push(entry)
    try {
      entry.exposed = await plugin(this, options as Options)
    } catch (error) {
      this.#plugins.splice(this.#plugins.indexOf(entry), 1)
      throw error
    }
    return entry.exposed as Exposed
  }

  /**
   * Takes over the options that can change while terminals stay connected (a config reload):
   * the policies, from the next publish on; the health timings except `keepaliveSeconds` (the
   * health links' CONNECT carries it: that one needs a restart), from their next use; and
   * `limits.maxInflight`, for the terminals that connect from now on. Given as a whole, as at
   * start: a key left out is back at its default. No terminal, session or stored message is touched.
   */
  reconfigure (options: Pick<DualBrokerOptions, 'policies' | 'defaultPolicy' | 'health' | 'limits'>): void {
    const parsed = liveSchema.safeParse(options)
    if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, options, liveSchema))
    const { policies, defaultPolicy, health: { keepaliveSeconds: _restartOnly, ...timings }, limits } = parsed.data
    const core = coreOf(this)
    core.table.usePolicies(new PolicyTable(policies, defaultPolicy))
    Object.assign(this.options, { policies, defaultPolicy })
    const sweepChanged = timings.ackTimeoutMs !== this.options.health.ackTimeoutMs
    // Shared by reference with the endpoints, sessions and the mode machine: each reads it when it needs it.
    Object.assign(this.options.health, timings)
    Object.assign(this.options.limits, limits)
    if (sweepChanged) core.sweepAcks()
  }

  /**
   * Stops reading the terminals, then resolves once none has a publish in
   * flight (each one acked upstream or stored), or after `timeoutMs`; true
   * when everything became safe. For a graceful stop, after the listeners
   * stopped accepting: a terminal that keeps publishing would otherwise never
   * let the node see nothing in flight. What it sends meanwhile stays unread
   * and unacknowledged, and it resends that through the next node.
   */
  drain (timeoutMs: number): Promise<boolean> {
    return coreOf(this).drain(timeoutMs)
  }

  /**
   * Closes the registered plugins, last first; then ends every upstream
   * session, health link and timer, closes the store, and gives the instance
   * its own hooks back.
   */
  close (): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown (): Promise<void> {
    coreOf(this).closing = true // a CONNECT answered from now on is refused
    for (const { exposed } of this.#plugins.splice(0).reverse()) {
      if (typeof (exposed as Partial<Closable> | undefined)?.close === 'function') await (exposed as Closable).close()
    }
    await coreOf(this).close()
  }
}

/**
 * Turns an Aedes instance into the access tier: every terminal is kept
 * online at Broker1 and Broker2. Options are validated once, up front.
 */
export async function dualBroker (aedes: Aedes, options: DualBrokerOptions & PluginExtras): Promise<DualBroker> {
  const { logger = silentLogger, ...rest } = options
  const parsed = pluginSchema.safeParse(rest)
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, rest, pluginSchema))
  if (parsed.data.pendingStore !== undefined && parsed.data.store !== undefined) {
    // Which store would win, and whose bounds, would be a guess: refused, as any other conflict.
    throw new ConfigError(['pendingStore: not together with store: store configures the LevelDB store; a given store has its own bounds'])
  }
  const tier = new DualBroker(aedes, parsed.data, logger)
  const core = coreOf(tier)
  core.attach(() => { void tier.close() })
  await core.start()
  return tier
}
