import { EventEmitter } from 'node:events'
import mqtt, { type IClientOptions, type IPublishPacket, type ISubscriptionGrant, type MqttClient } from 'mqtt'
import { type BrokerEndpoint, publishOptions } from './broker-endpoint.js'
import { toMqtt311ReturnCode } from './return-codes.js'

/** What a terminal's CONNECT carried, replayed to each broker. */
export interface TerminalIdentity {
  clientId: string
  username?: string
  password?: Buffer
  clean: boolean
  keepalive: number
  will?: { topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean }
}

export type ConnectOutcome =
  | { kind: 'accepted', sessionPresent: boolean }
  | { kind: 'refused', returnCode: number }
  | { kind: 'unreachable', reason: string }

export type Deliver = (packet: IPublishPacket, done: (error?: Error) => void) => void

export interface UpstreamLinkEvents {
  /** The link lost its connection after having been online (not emitted by `end`). */
  offline: [link: UpstreamLink]
}

/**
 * One terminal's session at one broker: an mqtt.js client that carries the
 * terminal's identity. A fresh mqtt.js client is made per connection attempt, so
 * that nothing mqtt.js queued for a dead connection is ever re-sent behind the
 * tier's back: the terminal session re-routes what was in flight.
 */
export class UpstreamLink extends EventEmitter<UpstreamLinkEvents> {
  online = false
  /** Subscriptions this broker is known to hold for the terminal: re-applied after a reconnect. */
  readonly applied = new Map<string, number>()
  private client: MqttClient | undefined
  private ended = false

  constructor (readonly endpoint: BrokerEndpoint, private readonly identity: TerminalIdentity, private readonly deliver: Deliver) {
    super()
  }

  get connecting (): boolean {
    return this.client !== undefined && !this.online
  }

  /** One connection attempt, bounded by `health.connectTimeoutMs`. */
  connect (): Promise<ConnectOutcome> {
    if (this.client !== undefined || this.ended) return Promise.resolve({ kind: 'unreachable', reason: 'busy' })
    const client = mqtt.connect(this.endpoint.url, this.endpoint.clientOptions(this.connectOptions()))
    // The PUBACKs a burst of deliveries sends back upstream leave in one write.
    client.handleMessage = (packet, done) => {
      corkForTick(client.stream)
      this.deliver(packet, done)
    }
    this.client = client
    return new Promise((resolve) => {
      let outcome: ConnectOutcome | undefined
      client.on('error', () => {}) // errors show as outcomes or as 'close'
      client.on('connect', (connack) => {
        noDelay(client)
        this.online = true
        outcome = { kind: 'accepted', sessionPresent: connack.sessionPresent }
        resolve(outcome)
      })
      client.on('error', (error: Error & { code?: unknown }) => {
        if (outcome === undefined && typeof error.code === 'number') {
          outcome = { kind: 'refused', returnCode: toMqtt311ReturnCode(error.code) }
        }
      })
      client.on('close', () => {
        resolve(outcome ?? { kind: 'unreachable', reason: 'no CONNACK' })
        if (this.client !== client) return
        this.client = undefined
        client.end(true)
        this.goneOffline()
      })
    })
  }

  private goneOffline (): void {
    const wasOnline = this.online
    this.online = false
    if (wasOnline && !this.ended) this.emit('offline', this)
  }

  /**
   * Gives up on a connection the health link found dead (a frozen broker sends
   * no reset). DISCONNECT is written first so that a broker which thaws later
   * does not publish the terminal's will for a drop that was the tier's choice.
   */
  drop (): void {
    const client = this.client
    if (client === undefined) return
    this.client = undefined
    closeConnection(client, true)
    this.goneOffline()
  }

  private connectOptions (): IClientOptions {
    const { identity, endpoint } = this
    const { options } = endpoint
    const username = options.username ?? identity.username
    const password = options.password ?? identity.password
    return {
      clientId: options.clientIdPrefix + identity.clientId,
      clean: identity.clean,
      keepalive: identity.keepalive,
      ...(username !== undefined && { username }),
      ...(password !== undefined && { password: typeof password === 'string' ? password : Buffer.from(password) }),
      ...(identity.will !== undefined && { will: identity.will })
    }
  }

  publish (topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, id: string | undefined, done: (error?: Error) => void): void {
    const client = this.client!
    corkForTick(client.stream)
    client.publish(topic, payload, publishOptions(this.endpoint, qos, retain, id), done)
  }

  /** Resolves with the granted QoS per topic (128 = refused), or undefined if the link was lost or timed out. */
  subscribe (subscriptions: Record<string, { qos: 0 | 1 | 2 }>): Promise<ISubscriptionGrant[] | undefined> {
    const client = this.client
    if (client === undefined || !this.online) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const finish = (granted?: ISubscriptionGrant[]): void => {
        clearTimeout(timer)
        client.removeListener('close', onClose)
        resolve(granted)
      }
      const onClose = (): void => finish()
      const timer = setTimeout(onClose, this.endpoint.health.ackTimeoutMs)
      client.once('close', onClose)
      // mqtt.js reports a SUBACK with a failure code (0x80) as an error, with the SUBACK packet beside it.
      client.subscribe(subscriptions, (error, granted, packet) => {
        if (packet === undefined) return finish(error === null ? granted : undefined)
        const topics = Object.keys(subscriptions)
        const codes = packet.granted as Array<number | { qos: number }>
        finish(codes.map((code, i) => ({ topic: topics[i]!, qos: (typeof code === 'number' ? code : code.qos) as ISubscriptionGrant['qos'] })))
      })
    })
  }

  unsubscribe (topics: string[]): void {
    for (const topic of topics) this.applied.delete(topic)
    if (this.online) this.client!.unsubscribe(topics)
  }

  ping (): void {
    if (this.online) this.client!.sendPing()
  }

  /**
   * Ends this connection with DISCONNECT (no will) and resolves once it is
   * closed. Unlike `end`, the link may connect again later, and no 'offline'
   * is emitted: the terminal session chose this.
   */
  release (): Promise<void> {
    const client = this.client
    if (client === undefined) return Promise.resolve()
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    this.client = undefined
    this.online = false
    closeConnection(client, true)
    return closed
  }

  /**
   * Graceful: DISCONNECT, so the broker discards the will. Otherwise the
   * socket is destroyed without DISCONNECT and the broker publishes the will.
   */
  end (graceful: boolean): void {
    this.ended = true
    this.online = false
    const client = this.client
    this.client = undefined
    if (client !== undefined) closeConnection(client, graceful)
  }
}

/**
 * mqtt.js writes a packet in several pieces, each a syscall on an uncorked
 * socket: the publishes of one tick leave in one write.
 */
export function corkForTick (stream: { cork?: () => void, uncork?: () => void, writableCorked?: number } | undefined): void {
  if (stream?.cork === undefined || stream.writableCorked !== 0) return
  stream.cork()
  process.nextTick(() => stream.uncork!())
}

/** Upstream publishes and acks are small writes: see listeners.ts on Nagle's algorithm. */
export function noDelay (client: MqttClient): void {
  const socket = client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined
  socket?.setNoDelay?.(true)
}

const DISCONNECT = Buffer.from([0xe0, 0x00]) // [MQTT-3.14.1]: fixed header, remaining length 0; valid in 3.1.1 and 5

/**
 * mqtt.js's own graceful end waits for every in-flight ack, which a dead or
 * frozen broker never sends: write DISCONNECT behind what is already on the
 * wire and destroy the socket.
 */
function closeConnection (client: MqttClient, sendDisconnect: boolean): void {
  const stream = client.stream
  if (sendDisconnect && client.connected && stream?.writable === true) {
    const timer = setTimeout(() => client.end(true), 1000).unref()
    stream.write(DISCONNECT, () => {
      clearTimeout(timer)
      client.end(true)
    })
  } else {
    client.end(true)
  }
}
