import { EventEmitter } from 'node:events'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { type ConnectionOwner, type ConnectOutcome, serviceOwner, UpstreamConnection } from './connection.js'

import type { BrokerState } from '../events.js'

export type { BrokerState }

export interface BrokerHealthEvents {
  up: []
  down: [reason: string]
}

/**
 * The tier's own link to one broker, with a short keepalive, independent of
 * terminals' keepalives: a crash (TCP reset/close) is noticed at once, a
 * frozen broker once a PINGREQ stays unanswered for a keepalive (keepalive.ts
 * pings after a keepalive less one 500 ms tick of silence): 1 to 1.5 s at the
 * default 1 s. A CONNACK that refuses the health link still proves the broker
 * is alive.
 */
export class BrokerHealth extends EventEmitter<BrokerHealthEvents> {
  state: BrokerState = 'unknown'
  private connection: UpstreamConnection | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private closed = false
  private readonly owner: ConnectionOwner = serviceOwner({
    published: () => {},
    closed: (connection, wasOnline) => this.onClosed(connection, wasOnline)
  })

  constructor (readonly endpoint: BrokerEndpoint) {
    super()
  }

  start (): void {
    this.connect()
  }

  private connect (): void {
    const { health } = this.endpoint
    const connection = new UpstreamConnection(this.owner, this.endpoint, this.endpoint.serviceConnect('health'), {
      // A frozen broker must not hold the probe for longer than a keepalive would.
      connectTimeoutMs: Math.min(health.connectTimeoutMs, health.keepaliveSeconds * 1500),
      localAddress: this.endpoint.serviceAddress
    })
    this.connection = connection
    void connection.open().then((outcome) => this.onOpened(connection, outcome))
  }

  private onOpened (connection: UpstreamConnection, outcome: ConnectOutcome): void {
    if (this.closed) return
    switch (outcome.kind) {
      // Still online: a connection lost right after its CONNACK has already reported 'down'.
      case 'accepted': if (connection.online) this.setState('up', 'connected')
        return
      case 'refused': return this.setState('up', 'health link refused but broker answered')
      // e.g. a certificate that does not verify: the reason operators need to see in 'broker down'
      case 'unreachable': return this.setState('down', outcome.reason)
    }
  }

  /** Every connection ends here, refused ones too: the next attempt follows after `health.reconnectPeriodMs`. */
  private onClosed (connection: UpstreamConnection, wasOnline: boolean): void {
    if (this.connection !== connection) return
    this.connection = undefined
    if (this.closed) return
    if (wasOnline) this.setState('down', connection.closeReason)
    this.retryTimer = setTimeout(() => this.connect(), this.endpoint.health.reconnectPeriodMs)
  }

  private setState (state: BrokerState, reason: string): void {
    if (this.state === state) return
    this.state = state
    if (state === 'up') this.emit('up')
    else this.emit('down', reason)
  }

  /** Marks the broker down before the health link notices, e.g. after a publish ack timed out. */
  suspect (reason: string): void {
    if (this.state !== 'up' || this.connection === undefined) return
    this.setState('down', reason)
    void this.connection.abort(reason)
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.retryTimer)
    const connection = this.connection
    this.connection = undefined
    if (connection !== undefined) await connection.abort('health link closed')
  }
}
