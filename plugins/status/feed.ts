/**
 * What the status page shows, gathered from the tier's public events and
 * `state`: the current state, the pending depth over the last minutes, the
 * replay in progress and the last mode changes. One feed per status server.
 */
import type { DualBrokerEvents, TierState } from '../../src/index.js'
import type { ObservedTier } from '../metrics.js'

/** `[time ms, pending messages, pending bytes]` */
export type PendingSample = [number, number, number]

export interface ReplayStatus {
  active: boolean
  /** Replayed so far in this replay (or in the last one, once it ended). */
  replayed: number
  /** Still in the store. */
  pending: number
  startedAt: number
  durationMs?: number
}

export interface TierEventRecord { at: number, type: string, detail: string }

export interface StatusSnapshot extends Omit<TierState, 'counters'> {
  at: number
  /** As `GET /health` answers: `ok` while at least one broker is up. */
  health: 'ok' | 'unavailable'
  counters: TierState['counters']
  replay: ReplayStatus | null
  /** Newest first. */
  events: TierEventRecord[]
  /** Only in the first snapshot of a stream: the samples of the whole window. */
  history?: PendingSample[]
}

/** Events that change what the page shows at once; `dropped` and `publish-acked` show on the next tick. */
const PUSHED = ['broker-up', 'broker-down', 'failover', 'failback', 'replay-start', 'replay-progress', 'replay-end'] as const
type Pushed = typeof PUSHED[number]

const describe: { [E in Pushed]: (...args: DualBrokerEvents[E]) => string } = {
  'broker-up': ({ broker, protocolVersion }) => `${broker} (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'})`,
  'broker-down': ({ broker, reason }) => `${broker}: ${reason}`,
  failover: ({ reason }) => reason,
  failback: ({ downMs }) => `Broker1 back after ${(downMs / 1000).toFixed(1)} s`,
  'replay-start': ({ pending }) => `${pending} pending`,
  'replay-progress': ({ replayed, pending }) => `${replayed} replayed, ${pending} pending`,
  'replay-end': ({ replayed, durationMs }) => `${replayed} replayed in ${(durationMs / 1000).toFixed(1)} s`
}

export function isAvailable (state: Pick<TierState, 'brokers'>): boolean {
  return Object.values(state.brokers).some((broker) => broker.state === 'up')
}

export class StatusFeed {
  private readonly samples: PendingSample[] = []
  private readonly events: TierEventRecord[] = []
  private replay: ReplayStatus | null = null
  private readonly detach: Array<() => void> = []

  constructor (
    private readonly tier: ObservedTier,
    /** Called on every event in PUSHED, after the feed took it in. */
    onChange: () => void,
    private readonly windowMs = 10 * 60_000,
    private readonly maxEvents = 20
  ) {
    for (const type of PUSHED) {
      const listener = (...args: any[]): void => {
        this.take(type, args[0])
        // replay-progress comes at most once a second and would crowd the log out.
        if (type !== 'replay-progress') this.log(type, (describe[type] as (...a: any[]) => string)(...args))
        onChange()
      }
      tier.on(type, listener)
      this.detach.push(() => tier.off(type, listener))
    }
    this.sample()
  }

  private take (type: Pushed, event: any): void {
    const now = Date.now()
    if (type === 'replay-start') this.replay = { active: true, replayed: 0, pending: event.pending, startedAt: now }
    else if (type === 'replay-progress' && this.replay !== null) Object.assign(this.replay, { replayed: event.replayed, pending: event.pending })
    else if (type === 'replay-end' && this.replay !== null) {
      Object.assign(this.replay, { active: false, replayed: event.replayed, pending: 0, durationMs: event.durationMs })
    }
  }

  private log (type: string, detail: string): void {
    this.events.unshift({ at: Date.now(), type, detail })
    this.events.length = Math.min(this.events.length, this.maxEvents)
  }

  /** Records the pending depth now; called once a second by the server. */
  sample (): void {
    const now = Date.now()
    const { pending } = this.tier.state
    this.samples.push([now, pending.messages, pending.bytes])
    while (this.samples.length > 0 && this.samples[0]![0] < now - this.windowMs) this.samples.shift()
  }

  snapshot (withHistory = false): StatusSnapshot {
    const state = this.tier.state
    const replay = this.replay === null ? null : { ...this.replay }
    // Between events the store drains without telling: keep the bar honest with the live count.
    if (replay?.active === true) replay.pending = state.pending.messages
    return {
      at: Date.now(),
      health: isAvailable(state) ? 'ok' : 'unavailable',
      ...state,
      replay,
      events: [...this.events],
      ...(withHistory && { history: [...this.samples] })
    }
  }

  close (): void {
    for (const undo of this.detach.splice(0)) undo()
  }
}
