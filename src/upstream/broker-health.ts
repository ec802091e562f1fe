import { EventEmitter } from 'node:events'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { type ConnectionOwner, type ConnectOutcome, NO_CONNACK, serviceOwner, UpstreamConnection } from './connection.js'
import { UNACCEPTABLE_PROTOCOL_VERSION } from '../mqtt/return-codes.js'

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
 *
 * Under `protocolVersion: 'auto'` it also finds out what the broker speaks, at
 * each of its connections (one per broker connection epoch), before it reports
 * the broker up: MQTT 5 first; where the broker refuses that version (CONNACK
 * 0x01, Aedes 1.2) or closes the connection on that CONNECT, 3.1.1 at once.
 */
export class BrokerHealth extends EventEmitter<BrokerHealthEvents> {
  state: BrokerState = 'unknown'
  private connection: UpstreamConnection | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private closed = false
  /** The version the next connection tries, once: 3.1.1 right after the broker refused MQTT 5. */
  private nextTrial: 4 | undefined
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
    const { health, negotiates } = this.endpoint
    const version = negotiates ? this.nextTrial ?? 5 : this.endpoint.protocolVersion
    this.nextTrial = undefined
    const connection = new UpstreamConnection(this.owner, this.endpoint, this.endpoint.serviceConnect('health', version), {
      // A frozen broker must not hold the probe for longer than a keepalive would.
      connectTimeoutMs: Math.min(health.connectTimeoutMs, health.keepaliveSeconds * 1500),
      localAddress: this.endpoint.serviceAddress
    })
    this.connection = connection
    void connection.open().then((outcome) => this.onOpened(connection, outcome))
  }

  private onOpened (connection: UpstreamConnection, outcome: ConnectOutcome): void {
    if (this.closed || this.refusedVersion(connection)) return // the 3.1.1 trial that follows has the verdict
    // A broker that answered CONNECT speaks its version, even where it refused the health link.
    if (outcome.kind !== 'unreachable') this.endpoint.decide(connection.protocolVersion)
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
    if (this.refusedVersion(connection)) this.nextTrial = 4
    this.retryTimer = setTimeout(() => this.connect(), this.nextTrial === 4 ? 0 : this.endpoint.health.reconnectPeriodMs)
  }

  /**
   * An `auto` trial of MQTT 5 that the broker turned down for its version: refused with 0x01
   * [MQTT-3.1.2-2], or closed before any CONNACK (a broker may close instead, §3.1.4). A timeout
   * is no answer: a frozen broker is down in either version.
   */
  private refusedVersion (connection: UpstreamConnection): boolean {
    if (!this.endpoint.negotiates || connection.protocolVersion !== 5 || connection.accepted) return false
    const refused = connection.refusedWith
    return refused === UNACCEPTABLE_PROTOCOL_VERSION || (refused === undefined && connection.closeReason !== NO_CONNACK)
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
