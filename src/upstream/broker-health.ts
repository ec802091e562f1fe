import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import type { BrokerEndpoint } from './broker-endpoint.js'

import type { BrokerState } from '../events.js'

export type { BrokerState }

export interface BrokerHealthEvents {
  up: []
  down: [reason: string]
}

/**
 * The tier's own link to one broker, with a short keepalive, independent of
 * terminals' keepalives: a crash (TCP reset/close) is noticed at once, a
 * frozen broker within 1.5 × keepalive (mqtt.js pings at 1 × and gives up at 1.5 ×).
 * A CONNACK that refuses the health link still proves the broker is alive.
 */
export class BrokerHealth extends EventEmitter<BrokerHealthEvents> {
  state: BrokerState = 'unknown'
  private client: MqttClient | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor (readonly endpoint: BrokerEndpoint) {
    super()
  }

  start (): void {
    this.connect()
  }

  private connect (): void {
    const { options, health } = this.endpoint
    const client = this.endpoint.connectService({
      clientId: `${options.clientIdPrefix}dual-broker-health-${randomBytes(4).toString('hex')}`,
      clean: true,
      keepalive: health.keepaliveSeconds,
      // A frozen broker must not hold the probe for longer than a keepalive would.
      connectTimeout: Math.min(health.connectTimeoutMs, health.keepaliveSeconds * 1500),
      ...this.endpoint.serviceCredentials
    })
    this.client = client
    let refused = false
    let lastError = 'connection lost'
    client.on('connect', () => this.setState('up', 'connected'))
    client.on('error', (error: Error & { code?: unknown }) => {
      // e.g. a certificate that does not verify: the reason operators need to see in 'broker down'
      lastError = error.message
      if (typeof error.code !== 'number') return
      refused = true
      this.setState('up', 'health link refused but broker answered')
    })
    client.on('close', () => {
      if (this.client !== client) return
      this.client = undefined
      client.end(true)
      if (this.closed) return
      if (!refused) this.setState('down', lastError)
      this.retryTimer = setTimeout(() => this.connect(), this.endpoint.health.reconnectPeriodMs)
    })
  }

  private setState (state: BrokerState, reason: string): void {
    if (this.state === state) return
    this.state = state
    if (state === 'up') this.emit('up')
    else this.emit('down', reason)
  }

  /** Marks the broker down before the health link notices, e.g. after a publish ack timed out. */
  suspect (reason: string): void {
    if (this.state !== 'up' || this.client === undefined) return
    this.setState('down', reason)
    this.client.end(true)
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.retryTimer)
    const client = this.client
    this.client = undefined
    if (client !== undefined) await client.endAsync(true)
  }
}
