import { readFileSync } from 'node:fs'
import type { IClientOptions, IClientPublishOptions } from 'mqtt'
import { MESSAGE_ID_PROPERTY } from './dedup.js'
import type { BrokerOptions, HealthOptions } from '../config/schema.js'

export type BrokerName = 'broker1' | 'broker2'

/**
 * What every link to one upstream broker shares: its URL, TLS material
 * (read once, at start) and the timing options.
 */
export class BrokerEndpoint {
  readonly url: string
  private readonly tls: Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'>

  constructor (readonly name: BrokerName, readonly options: BrokerOptions, readonly health: HealthOptions) {
    this.url = options.url
    this.tls = {
      rejectUnauthorized: options.rejectUnauthorized,
      ...(options.ca !== undefined && { ca: readFileSync(options.ca) }),
      ...(options.cert !== undefined && { cert: readFileSync(options.cert) }),
      ...(options.key !== undefined && { key: readFileSync(options.key) })
    }
  }

  /** mqtt.js options shared by health and terminal links: the tier reconnects links itself. */
  clientOptions (overrides: IClientOptions): IClientOptions {
    return {
      protocolVersion: this.options.protocolVersion,
      connectTimeout: this.health.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      ...this.tls,
      ...overrides
    }
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
    const url = new URL(this.url)
    url.username = ''
    url.password = ''
    return url.toString()
  }
}

/** Publish options for one broker: the tier's message id travels as a user property where it speaks MQTT 5. */
export function publishOptions (endpoint: BrokerEndpoint, qos: 0 | 1 | 2, retain: boolean, id: string | undefined): IClientPublishOptions {
  if (id === undefined || endpoint.options.protocolVersion !== 5) return { qos, retain }
  return { qos, retain, properties: { userProperties: { [MESSAGE_ID_PROPERTY]: id } } }
}
