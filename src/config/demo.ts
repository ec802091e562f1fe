/**
 * Demo mode: with no broker configured, two embedded Aedes brokers stand in
 * as Broker1 and Broker2. Kept apart from the brokers themselves so that
 * `--print-config` can say what a start would use without loading Aedes.
 */

/** The embedded brokers listen only on loopback: they take no credentials. */
export const EMBEDDED_HOST = '127.0.0.1'

interface DemoFields {
  broker1?: unknown
  broker2?: unknown
  embeddedPorts?: readonly [number, number] | undefined
  listen: { host?: string | undefined, port: number }
}

export function usesEmbeddedBrokers (config: Pick<DemoFields, 'broker1' | 'broker2'>): boolean {
  return config.broker1 === undefined && config.broker2 === undefined
}

/**
 * `embeddedPorts` when given, else the two ports after the terminals' port
 * (1883 → 1884, 1885), so that `--port` alone moves the whole demo; any free
 * ports when the terminals' port is 0 or the next two do not exist.
 */
export function embeddedPorts (config: DemoFields): [number, number] {
  if (config.embeddedPorts !== undefined) return [config.embeddedPorts[0], config.embeddedPorts[1]]
  const { port } = config.listen
  return port === 0 || port > 65533 ? [0, 0] : [port + 1, port + 2]
}

/** The terminals' listener: `listen.host` when given, else all interfaces, or loopback only in demo mode. */
export function listenHost (config: DemoFields): string {
  return config.listen.host ?? (usesEmbeddedBrokers(config) ? EMBEDDED_HOST : '0.0.0.0')
}
