import { ConfigError } from './errors.js'
import { policyModes } from './schema.js'
import { setPath, type Tree } from './tree.js'

/** Options as commander gives them: every value is the text typed on the command line (`true` for a switch). */
export interface CliFlags {
  port?: string
  host?: string
  wsPort?: string
  broker1?: string
  broker2?: string
  embeddedPorts?: string
  data?: string
  policy?: string[]
  defaultPolicy?: string
  httpPort?: string
  logLevel?: string
  tlsPort?: string
  tlsCert?: string
  tlsKey?: string
  tlsCa?: string
  tlsRequestCert?: true
  maxConnections?: string
  connectionRate?: string
  maxPacketSize?: string
  maxInflight?: string
}

/**
 * Each flag and the config key it sets. `number`: its text must be a whole number; `pair`: two
 * whole numbers `A,B`; `toggle`: a switch that sets `true`. Otherwise the text is passed on as it is.
 */
export const FLAGS: Array<{ option: keyof CliFlags, flag: string, key: string[], number?: true, pair?: true, toggle?: true }> = [
  { option: 'port', flag: '--port', key: ['listen', 'port'], number: true },
  { option: 'host', flag: '--host', key: ['listen', 'host'] },
  { option: 'wsPort', flag: '--ws-port', key: ['listen', 'wsPort'], number: true },
  { option: 'broker1', flag: '--broker1', key: ['broker1', 'url'] },
  { option: 'broker2', flag: '--broker2', key: ['broker2', 'url'] },
  { option: 'embeddedPorts', flag: '--embedded-ports', key: ['embeddedPorts'], pair: true },
  { option: 'data', flag: '--data', key: ['data'] },
  { option: 'policy', flag: '--policy', key: ['policies'] },
  { option: 'defaultPolicy', flag: '--default-policy', key: ['defaultPolicy'] },
  { option: 'httpPort', flag: '--http-port', key: ['http', 'port'], number: true },
  { option: 'logLevel', flag: '--log-level', key: ['logLevel'] },
  { option: 'tlsPort', flag: '--tls-port', key: ['listen', 'tls', 'port'], number: true },
  { option: 'tlsCert', flag: '--tls-cert', key: ['listen', 'tls', 'cert'] },
  { option: 'tlsKey', flag: '--tls-key', key: ['listen', 'tls', 'key'] },
  { option: 'tlsCa', flag: '--tls-ca', key: ['listen', 'tls', 'ca'] },
  { option: 'tlsRequestCert', flag: '--tls-request-cert', key: ['listen', 'tls', 'requestCert'], toggle: true },
  { option: 'maxConnections', flag: '--max-connections', key: ['limits', 'maxConnections'], number: true },
  { option: 'connectionRate', flag: '--connection-rate', key: ['limits', 'connectionRatePerSecond'], number: true },
  { option: 'maxPacketSize', flag: '--max-packet-size', key: ['limits', 'maxPacketSize'] },
  { option: 'maxInflight', flag: '--max-inflight', key: ['limits', 'maxInflight'], number: true }
]

/** The config keys set by command-line flags; throws a ConfigError listing every bad flag. */
export function flagsToConfig (flags: CliFlags): Tree {
  const { config, problems } = mapFlags(flags)
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

/** The keys of the good flags, and a line for each bad one. */
export function mapFlags (flags: CliFlags): { config: Tree, problems: string[] } {
  const config: Tree = {}
  const problems: string[] = []
  for (const { option, flag, key, number, pair, toggle } of FLAGS) {
    const text = flags[option]
    if (text === undefined || option === 'policy') continue
    if (toggle === true) {
      setPath(config, key, true)
    } else if (number === true && !/^\d+$/.test(text as string)) {
      problems.push(`${flag}: ${JSON.stringify(text)} is not a whole number`)
    } else if (pair === true && !/^\d+,\d+$/.test(text as string)) {
      problems.push(`${flag}: ${JSON.stringify(text)} is not two whole numbers A,B`)
    } else {
      setPath(config, key, number === true ? Number(text) : pair === true ? (text as string).split(',').map(Number) : text)
    }
  }
  const policies = (flags.policy ?? []).flatMap((text) => {
    // A topic may contain '=' but a mode never does, so the last '=' separates them.
    const at = text.lastIndexOf('=')
    const mode = text.slice(at + 1)
    if (at < 0) problems.push(`--policy: ${JSON.stringify(text)} is not FILTER=MODE, e.g. "sensors/#=queue"`)
    else if (!(policyModes as readonly string[]).includes(mode)) {
      problems.push(`--policy: ${JSON.stringify(text)} has an unknown mode ${JSON.stringify(mode)}: expected one of ${policyModes.map((m) => `"${m}"`).join(', ')}`)
    } else return [{ topic: text.slice(0, at), mode }]
    return []
  })
  if (policies.length > 0) config.policies = policies
  return { config, problems }
}

