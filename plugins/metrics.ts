/**
 * Prometheus metrics for a `dualBroker` tier (README "Operating it"), built only on its
 * public surface: totals and gauges are read from `tier.state` at scrape time
 * (so nothing is counted twice and a late-attached plugin still sees the full
 * totals); only the ack latency histogram needs an event, `publish-acked`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Metric, Registry } from 'prom-client'
import { type BrokerName, type DualBroker, type DualBrokerEvents, type TierState, tierPlugin } from '../src/index.js'

/** What the plugin needs of a tier: any `DualBroker` qualifies. */
export type ObservedTier = Pick<DualBroker, 'state' | 'on' | 'off'>

export interface MetricsOptions {
  /** Registry to register into (e.g. prom-client's global one); default a fresh one. */
  registry?: Registry
  /** Prefix of every metric name; default `dualbroker_`. */
  prefix?: string
  /**
   * prom-client's default process metrics (memory, CPU, event-loop lag, file descriptors, GC),
   * with the same prefix: `dualbroker_process_…`, `dualbroker_nodejs_…`. Default true; skipped
   * when the registry already has them under this prefix.
   */
  processMetrics?: boolean
}

export interface MetricsPlugin {
  readonly registry: Registry
  /** The exposition text, as `GET /metrics` serves it. */
  metrics: () => Promise<string>
  /** Content-Type header for `metrics()`. */
  readonly contentType: string
  /** Stops listening to the tier and removes these metrics from the registry. */
  close: () => void
}

const BROKERS: BrokerName[] = ['broker1', 'broker2']
const QOS = [0, 1, 2] as const
/** MQTT ack round trips: from a LAN's millisecond up to the default ack timeout (5 s) and past it. */
const ACK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export function metricsPlugin (tier: ObservedTier, options: MetricsOptions = {}): MetricsPlugin {
  const registry = options.registry ?? new Registry()
  const prefix = options.prefix ?? 'dualbroker_'
  const names: string[] = []
  const add = <M extends Metric>(metric: M): M => { names.push((metric as unknown as { name: string }).name); return metric }

  /** A counter whose value is a running total the tier keeps: set from it on each scrape. */
  const total = (name: string, help: string, read: (state: TierState) => number): void => {
    add(new Counter({
      name: prefix + name,
      help,
      registers: [registry],
      collect () {
        this.reset()
        this.inc(read(tier.state))
      }
    }))
  }
  /** Running totals per `reason` label. */
  const byReason = (name: string, help: string, read: (state: TierState) => Record<string, number>): void => {
    add(new Counter({
      name: prefix + name,
      help,
      labelNames: ['reason'],
      registers: [registry],
      collect () {
        this.reset()
        for (const [reason, count] of Object.entries(read(tier.state))) this.inc({ reason }, count)
      }
    }))
  }
  const gauge = (name: string, help: string, read: (state: TierState) => number): void => {
    add(new Gauge({ name: prefix + name, help, registers: [registry], collect () { this.set(read(tier.state)) } }))
  }

  add(new Gauge({
    name: prefix + 'broker_up',
    help: 'Whether the broker\'s health link is connected (1) or not (0)',
    labelNames: ['broker'],
    registers: [registry],
    collect () {
      const { brokers } = tier.state
      for (const broker of BROKERS) this.set({ broker }, brokers[broker].state === 'up' ? 1 : 0)
    }
  }))
  add(new Gauge({
    name: prefix + 'broker_protocol_version',
    help: 'The MQTT version of the upstream sessions at the broker: 5, 4 (3.1.1), or 0 while protocolVersion auto has not decided',
    labelNames: ['broker'],
    registers: [registry],
    collect () {
      const { brokers } = tier.state
      for (const broker of BROKERS) this.set({ broker }, brokers[broker].protocolVersion ?? 0)
    }
  }))
  total('failovers_total', 'Times Broker1 went down and publishes followed the per-topic policy', (s) => s.counters.failovers)
  total('failbacks_total', 'Times traffic returned to Broker1 after an outage', (s) => s.counters.failbacks)
  add(new Counter({
    name: prefix + 'forwarded_total',
    help: 'Live publishes a broker acked (QoS 1/2) or that were written to it (QoS 0)',
    labelNames: ['broker', 'qos'],
    registers: [registry],
    collect () {
      const { forwarded } = tier.state.counters
      this.reset()
      for (const broker of BROKERS) for (const qos of QOS) this.inc({ broker, qos }, forwarded[broker][qos])
    }
  }))
  total('stored_total', 'Publishes committed to the pending store', (s) => s.counters.stored)
  total('replayed_total', 'Stored publishes a broker acked on replay', (s) => s.counters.replayed)
  total('expired_total', 'Stored publishes discarded because their TTL passed', (s) => s.counters.dropped.expired)
  byReason('dropped_total', 'Publishes discarded: by a drop policy, a full store, an expired TTL, or QoS 0 with no broker to take it', (s) => s.counters.dropped)
  byReason('refused_total', 'Connections, CONNECTs and subscription filters refused by a limit, and terminals refused at a ceiling of the node (fd-limit, source-ports), by reason', (s) => s.counters.refused)
  gauge('pending_messages', 'Publishes waiting in the pending store', (s) => s.pending.messages)
  gauge('pending_bytes', 'Bytes waiting in the pending store', (s) => s.pending.bytes)
  gauge('clients', 'Connected terminals with an upstream session pair', (s) => s.clients)
  add(new Counter({
    name: prefix + 'sessions_restored_total',
    help: 'Terminal sessions a broker came back without, made whole by re-subscribing what the tier knew',
    labelNames: ['broker'],
    registers: [registry],
    collect () {
      const { restored } = tier.state.counters.sessions
      this.reset()
      for (const broker of BROKERS) this.inc({ broker }, restored[broker])
    }
  }))
  add(new Counter({
    name: prefix + 'reconnects_asked_total',
    help: 'Terminals whose connection was ended without a will because a broker came back without their session, by broker and reason',
    labelNames: ['broker', 'reason'],
    registers: [registry],
    collect () {
      const { reconnectsAsked } = tier.state.counters.sessions
      this.reset()
      for (const broker of BROKERS) for (const [reason, count] of Object.entries(reconnectsAsked[broker])) this.inc({ broker, reason }, count)
    }
  }))
  add(new Gauge({
    name: prefix + 'sessions_lost',
    help: 'Connected terminals whose session at the broker is not whole: being re-subscribed, or asked to reconnect and not back',
    labelNames: ['broker'],
    registers: [registry],
    collect () {
      const { sessionsLost } = tier.state
      for (const broker of BROKERS) this.set({ broker }, sessionsLost[broker])
    }
  }))

  const ackSeconds = add(new Histogram({
    name: prefix + 'publish_ack_seconds',
    help: 'Time from sending a live publish upstream to the broker\'s ack',
    labelNames: ['broker'],
    buckets: ACK_BUCKETS,
    registers: [registry]
  }))
  if (options.processMetrics !== false && registry.getSingleMetric(`${prefix}process_cpu_seconds_total`) === undefined) {
    const before = new Set(registry.getMetricsAsArray().map((metric) => metric.name))
    collectDefaultMetrics({ register: registry, prefix })
    names.push(...registry.getMetricsAsArray().map((metric) => metric.name).filter((name) => !before.has(name)))
  }

  // The tier emits `publish-acked` only while someone listens: this listener is what turns it on.
  const onAcked = ({ broker, seconds }: DualBrokerEvents['publish-acked'][0]): void => ackSeconds.observe({ broker }, seconds)
  tier.on('publish-acked', onAcked)

  return {
    registry,
    contentType: registry.contentType,
    metrics: () => registry.metrics(),
    close () {
      tier.off('publish-acked', onAcked)
      for (const name of names.splice(0)) registry.removeSingleMetric(name)
    }
  }
}

/** `await tier.register(metrics, options)`: the same metrics, closed with the tier. */
export const metrics = tierPlugin('metrics', (tier: DualBroker, options: MetricsOptions | undefined) => metricsPlugin(tier, options))
