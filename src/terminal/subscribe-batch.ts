import type { Qos } from '../mqtt/protocol.js'
import type { Grant } from '../upstream/connection.js'

/** What a batch needs of one upstream session. */
interface Subscriber {
  subscribe: (subscriptions: ReadonlyArray<{ topic: string, qos: Qos }>) => Promise<Grant[] | undefined>
}

/** Each broker's granted QoS (FAILURE, 0x80, = refused), or undefined where a broker did not answer. */
export type Grants = ReadonlyArray<number | undefined>

/**
 * The filters of one SUBSCRIBE reach the tier one at a time (Aedes asks
 * `authorizeSubscribe` once per filter, all in one turn): they leave for each
 * broker as one SUBSCRIBE, so that 5,000 filters cost one packet and one
 * SUBACK per broker instead of 5,000.
 */
export class SubscribeBatch {
  private readonly filters: Array<{ topic: string, qos: Qos }> = []
  private readonly answers: Array<(grants: Grants) => void> = []

  constructor (private readonly sessions: readonly Subscriber[]) {
    process.nextTick(() => { void this.send() })
  }

  add (topic: string, qos: Qos): Promise<Grants> {
    this.filters.push({ topic, qos })
    return new Promise((resolve) => this.answers.push(resolve))
  }

  private async send (): Promise<void> {
    const perSession = await Promise.all(this.sessions.map((session) => session.subscribe(this.filters)))
    this.answers.forEach((answer, i) => answer(perSession.map((grants) => grants?.[i]?.qos)))
  }
}
