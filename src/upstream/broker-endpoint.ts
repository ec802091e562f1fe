import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions, MqttClient } from 'mqtt'
import type { BrokerOptions, HealthOptions } from '../config/schema.js'
import type { BrokerName } from '../events.js'
import { SourceAddresses } from './source-addresses.js'
import { openTransport, type TlsMaterial, withoutCredentials } from './transport.js'


/**
 * What every link to one upstream broker shares: its URL, TLS material
 * (read once, at start) and the timing options.
 */
export class BrokerEndpoint {
  readonly url: string
  readonly address: URL
  readonly tlsMaterial: TlsMaterial
  /** Where the terminals' upstream sockets to this broker come from; undefined: the system chooses. */
  readonly sources: SourceAddresses | undefined

  constructor (readonly name: BrokerName, readonly options: BrokerOptions, readonly health: HealthOptions) {
    this.url = options.url
    this.address = new URL(options.url)
    this.sources = options.localAddresses === undefined ? undefined : new SourceAddresses(options.localAddresses)
    this.tlsMaterial = {
      rejectUnauthorized: options.rejectUnauthorized,
      ...(options.ca !== undefined && { ca: readFileSync(options.ca) }),
      ...(options.cert !== undefined && { cert: readFileSync(options.cert) }),
      ...(options.key !== undefined && { key: readFileSync(options.key) })
    }
  }

  /** mqtt.js options of the tier's own sessions (health link, replay): the tier reconnects them itself. */
  clientOptions (overrides: IClientOptions): IClientOptions {
    return {
      protocolVersion: this.options.protocolVersion,
      connectTimeout: this.health.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      ...this.tlsMaterial,
      ...overrides
    }
  }

  /**
   * An mqtt.js client for one of the tier's own sessions (health link, replay). With a pool of
   * source addresses it connects from the first, so that it takes the terminals' route to the broker.
   */
  connectService (overrides: IClientOptions): MqttClient {
    const options = this.clientOptions(overrides)
    const first = this.options.localAddresses?.[0]
    if (first === undefined) return mqtt.connect(this.url, options)
    return new MqttClient(() => openTransport(this.address, this.tlsMaterial, first), options)
  }

  /** Credentials of the tier's own sessions (health link, replay). */
  get serviceCredentials (): Pick<IClientOptions, 'username' | 'password'> {
    const { service, username, password } = this.options
    const user = service?.username ?? username
    const pass = service?.password ?? password
    return { ...(user !== undefined && { username: user }), ...(pass !== undefined && { password: pass }) }
  }

  /** The URL without credentials, for logs. */
  get safeUrl (): string {
    return withoutCredentials(this.address).toString()
  }
}
