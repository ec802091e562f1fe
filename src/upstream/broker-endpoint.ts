import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IConnectPacket } from 'mqtt-packet'
import type { BrokerOptions, HealthOptions } from '../config/schema.js'
import type { BrokerName } from '../events.js'
import { SourceAddresses } from './source-addresses.js'
import { type TlsMaterial, withoutCredentials } from './transport.js'


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

  /**
   * The CONNECT of one of the tier's own sessions (health link, replay): a fresh client id each
   * time, a clean session, the health keepalive, and the service credentials
   * (`service.username`/`password`, else the broker's own).
   */
  serviceConnect (role: 'health' | 'replay'): IConnectPacket {
    const { protocolVersion, clientIdPrefix } = this.options
    const { username: user, password: pass } = this.serviceCredentials
    return {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion,
      clientId: `${clientIdPrefix}dual-broker-${role}-${randomBytes(4).toString('hex')}`,
      clean: true,
      keepalive: this.health.keepaliveSeconds,
      ...(user !== undefined && { username: user }),
      ...(pass !== undefined && { password: Buffer.from(pass) })
    }
  }

  /** The credentials of the tier's own sessions here: `service.username`/`password`, else the broker's own. */
  get serviceCredentials (): { username?: string, password?: string } {
    const { service, username, password } = this.options
    const user = service?.username ?? username
    const pass = service?.password ?? password
    return { ...(user !== undefined && { username: user }), ...(pass !== undefined && { password: pass }) }
  }

  /**
   * Where the tier's own sessions connect from: with a pool of source addresses the first, so
   * that they take the terminals' route to the broker; else the system chooses.
   */
  get serviceAddress (): string | undefined {
    return this.options.localAddresses?.[0]
  }

  /** The URL without credentials, for logs. */
  get safeUrl (): string {
    return withoutCredentials(this.address).toString()
  }
}
