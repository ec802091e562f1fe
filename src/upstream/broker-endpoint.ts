import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IConnectPacket } from 'mqtt-packet'
import { type BrokerOptions, type HealthOptions, SESSION_NEVER_EXPIRES } from '../config/schema.js'
import type { BrokerName } from '../events.js'
import { SourceAddresses } from './source-addresses.js'
import { type TlsMaterial, withoutCredentials } from './transport.js'

/** What the terminals' upstream sessions announce where they speak MQTT 5 (`limits.receiveMaximum`, `wills`, `sessions`). */
export interface SessionTerms {
  /** Receive Maximum [MQTT-3.3.4-9]: QoS 1/2 deliveries the broker may have unacknowledged on one session. */
  readonly receiveMaximum: number
  /** Will Delay Interval, seconds (§3.1.3.2.2). */
  readonly willDelaySeconds: number
  /** Session Expiry Interval of a persistent terminal's session, seconds; 0xFFFFFFFF = never (§3.1.2.11.2). */
  readonly sessionExpirySeconds: number
}

/** MQTT 5's defaults: a 3.1.1 session's behaviour (an endpoint made without the tier's config, e.g. by `drain`). */
const SESSION_DEFAULTS: SessionTerms = { receiveMaximum: 65535, willDelaySeconds: 0, sessionExpirySeconds: SESSION_NEVER_EXPIRES }

/**
 * What every link to one upstream broker shares: its URL, TLS material
 * (read once, at start), the timing options, and the MQTT version its
 * sessions speak in this broker connection epoch.
 */
export class BrokerEndpoint {
  readonly url: string
  readonly address: URL
  readonly tlsMaterial: TlsMaterial
  /** Where the terminals' upstream sockets to this broker come from; undefined: the system chooses. */
  readonly sources: SourceAddresses | undefined
  /**
   * What the health link found the broker speaks, for `protocolVersion: 'auto'`: set at each of
   * its connections, so before the terminals' sessions open after the broker came back.
   */
  private decided: 4 | 5 | undefined

  constructor (
    readonly name: BrokerName,
    readonly options: BrokerOptions,
    readonly health: HealthOptions,
    readonly terms: SessionTerms = SESSION_DEFAULTS
  ) {
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

  /** True for `protocolVersion: 'auto'`: the health link finds out what the broker speaks. */
  get negotiates (): boolean {
    return this.options.protocolVersion === 'auto'
  }

  /**
   * The MQTT version the upstream sessions speak now: the configured one, or what `auto`
   * decided; 3.1.1, which every broker speaks, before a first decision.
   */
  get protocolVersion (): 4 | 5 {
    const configured = this.options.protocolVersion
    return configured === 'auto' ? this.decided ?? 4 : configured
  }

  /** What state and metrics show: undefined while `auto` has not decided yet. */
  get decidedProtocol (): 4 | 5 | undefined {
    const configured = this.options.protocolVersion
    return configured === 'auto' ? this.decided : configured
  }

  decide (version: 4 | 5): void {
    this.decided = version
  }

  /**
   * The CONNECT of one of the tier's own sessions (health link, replay): a fresh client id each
   * time, a clean session, the health keepalive, and the service credentials
   * (`service.username`/`password`, else the broker's own). `protocolVersion`: the health link's
   * trial under `auto`; otherwise the endpoint's.
   */
  serviceConnect (role: 'health' | 'replay', protocolVersion: 4 | 5 = this.protocolVersion): IConnectPacket {
    const { clientIdPrefix } = this.options
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
