/**
 * Every error the tier makes on purpose carries a stable `code`, in the
 * manner of fastify's `FST_ERR_…` and abstract-level's `LEVEL_…` codes: match
 * on `code`, not on the message, which may be reworded. README "Errors" lists
 * them.
 */
export const ERROR_CODES = {
  /** Options or a configuration file that cannot be used; `problems` names each key. */
  DUALBROKER_ERR_CONFIG: 'bad configuration',
  /** The data dir is a file, read-only, full, or held by another process. */
  DUALBROKER_ERR_DATA_DIR: 'data dir unusable',
  /** The pending store cannot be opened, or holds an entry it cannot read. */
  DUALBROKER_ERR_STORE_OPEN: 'pending store cannot be opened',
  /** An append refused: the store is full (`overflow: reject-new`) or the message can never fit. */
  DUALBROKER_ERR_STORE_FULL: 'pending store full',
  /** The pending store is not open (never opened, or closed). */
  DUALBROKER_ERR_STORE_CLOSED: 'pending store closed',
  /** `aedes-dual-broker drain` could not start or finish. */
  DUALBROKER_ERR_DRAIN: 'drain failed',
  /** The embedded brokers of the demo could not listen. */
  DUALBROKER_ERR_EMBEDDED_BROKERS: 'embedded brokers cannot listen',
  /** The tier is closing: no new plugin, no new terminal. */
  DUALBROKER_ERR_CLOSING: 'tier closing',
  /** A plugin of that name is registered on this tier already. */
  DUALBROKER_ERR_PLUGIN_REGISTERED: 'plugin registered twice',
  /** This Aedes version lacks an internal the tier relies on (docs/ARCHITECTURE.md). */
  DUALBROKER_ERR_AEDES_UNSUPPORTED: 'Aedes version not supported',
  /** A terminal's CONNECT refused: a broker refused it, or none is reachable; `returnCode` is the CONNACK's. */
  DUALBROKER_ERR_CONNECT_REFUSED: 'connection refused',
  /** A publish from a terminal whose upstream session has ended. */
  DUALBROKER_ERR_NO_SESSION: 'no upstream session',
  /** A publish of the deployment's code (`aedes.publish`) that reached no broker: dropped by its policy, or QoS 0 with no broker up. */
  DUALBROKER_ERR_DROPPED: 'publish dropped',
  /** `aedes.publish` with a topic no MQTT publish may have (empty, or with a wildcard). */
  DUALBROKER_ERR_INVALID_TOPIC: 'invalid topic',
  /** A broker refused the node's subscription for `aedes.subscribe`. */
  DUALBROKER_ERR_SUBSCRIBE_REFUSED: 'subscription refused',
  /** A publish topic longer than `limits.maxTopicLength`: Aedes closes the connection. */
  DUALBROKER_ERR_TOPIC_TOO_LONG: 'topic too long'
} as const

export type DualBrokerErrorCode = keyof typeof ERROR_CODES

export class DualBrokerError extends Error {
  override name = 'DualBrokerError'

  constructor (readonly code: DualBrokerErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** A terminal's CONNECT refused; Aedes answers with `returnCode` (MQTT 3.1.1 §3.2.2.3, Table 3.1). */
export class ConnectRefusedError extends DualBrokerError {
  override name = 'ConnectRefusedError'

  constructor (readonly returnCode: number, message: string) {
    super('DUALBROKER_ERR_CONNECT_REFUSED', message)
  }
}
