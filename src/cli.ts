#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { Command } from 'commander'
import { pino } from 'pino'
import { ConfigError, loadConfigFile, maskSecrets, mergeSources, redactText, resolveConfig, type CliFlags, type ConfigSources } from './config/load.js'
import { printableConfig } from './config/print.js'
import { policyModes, type ResolvedServerConfig } from './config/schema.js'
import { type DrainConfig, resolveDrainConfig } from './config/drain.js'
import type { Logger } from './logger.js'

const NAME = 'aedes-dual-broker'
const CLOSE_TIMEOUT_MS = 10_000
/** Usage and configuration errors; start failures exit 1. */
const EXIT_USAGE = 2

const program = new Command(NAME)
  .description('MQTT access tier: keeps every terminal connected to two upstream brokers')
  .version(packageVersion(), '--version')
  .option('--config <file>', 'config file, YAML or JSON; SIGHUP reads it again')
  .option('--port <port>', 'MQTT port (default: 1883)')
  .option('--host <host>', 'address to listen on (default: 0.0.0.0; 127.0.0.1 with the embedded brokers)')
  .option('--ws-port <port>', 'MQTT over WebSocket port (default: off)')
  .option('--broker1 <url>', 'primary upstream broker, e.g. mqtt://10.0.0.1:1883')
  .option('--broker2 <url>', 'standby upstream broker')
  .option('--embedded-ports <a,b>', 'ports of the embedded brokers used when no broker is set (default: --port + 1, + 2; 0 = any free port)')
  .option('--data <dir>', 'folder of the node\'s state (default: ./data)')
  .option('--policy <filter=mode>', `topic policy, repeatable; mode: ${policyModes.join('|')}`, (v: string, all: string[] = []) => [...all, v])
  .option('--default-policy <mode>', 'policy of topics no --policy matches (default: both)')
  .option('--http-port <port>', 'HTTP port of /health, /metrics and the status page (default: off)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default: info)')
  .option('--tls-port <port>', 'MQTT over TLS port, with --tls-cert and --tls-key (default: 8883)')
  .option('--tls-cert <file>', 'PEM certificate (chain) of the TLS listener; turns it on')
  .option('--tls-key <file>', 'PEM private key of the TLS listener')
  .option('--tls-ca <file>', 'PEM CA that signs the terminals\' client certificates')
  .option('--tls-request-cert', 'require a client certificate signed by --tls-ca')
  .option('--max-connections <n>', 'terminal connections open at once, per listener (default: 10000; 0 = no limit)')
  .option('--connection-rate <n>', 'new connections accepted per second, per listener (default: 1000; 0 = no limit)')
  .option('--max-packet-size <size>', 'largest packet a terminal may send, e.g. 256KiB (default: 1MiB; 0 = no limit)')
  .option('--max-inflight <n>', 'QoS 1 publishes per terminal not yet safe before the tier stops reading it (default: 1000)')
  .option('--print-config', 'print the effective configuration (secrets masked) and exit')
  .configureOutput({ outputError: (text, write) => write(`${NAME}: ${text.replace(/^error: /, '')}`) })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
  // Options after a subcommand's name are the subcommand's own (`drain --data DIR`).
  .enablePositionalOptions()
  .action(() => serve(program.opts<Options>()))

program.command('drain')
  .description('replay a lost node\'s pending store to Broker1, in order; exits 0 once the store is empty')
  .option('--config <file>', 'the node\'s config file: its data dir, store, replay and Broker1 settings')
  .option('--data <dir>', 'the lost node\'s data dir (default: ./data)')
  .option('--broker1 <url>', 'Broker1, e.g. mqtt://10.0.0.1:1883 (default: broker1.url of --config)')
  .action((options: Pick<Options, 'config' | 'data' | 'broker1'>) => drain(options))

type Options = CliFlags & { config?: string, printConfig?: true }

function fail (lines: string[], code: number): never {
  for (const line of lines) process.stderr.write(`${NAME}: ${line}\n`)
  process.exit(code)
}

/** The config file (read anew on each call), the environment and the flags; throws a ConfigError. */
function sources (options: Options): ConfigSources {
  const file = options.config === undefined ? undefined : loadConfigFile(options.config)
  return { file, flags: options, env: process.env }
}

function configure (options: Options): { config: ResolvedServerConfig, given: ConfigSources } {
  try {
    const given = sources(options)
    return { config: resolveConfig(given), given }
  } catch (err) {
    if (err instanceof ConfigError) fail(err.problems, EXIT_USAGE)
    throw err
  }
}

/** `drain`: progress and the outcome on stderr, as lines; exit 0 once the store is empty. */
async function drain (options: Pick<Options, 'config' | 'data' | 'broker1'>): Promise<void> {
  let config: DrainConfig
  try {
    config = resolveDrainConfig({ ...sources(options), flags: { data: options.data, broker1: options.broker1 } })
  } catch (err) {
    if (err instanceof ConfigError) fail(err.problems, EXIT_USAGE)
    throw err
  }
  const say = (line: string): void => { process.stderr.write(`${NAME} drain: ${redactText(line, config)}\n`) }
  const logger: Logger = { info () {}, debug () {}, warn: (obj, msg) => say(`${msg ?? ''} ${JSON.stringify(maskSecrets(obj))}`), error: (obj, msg) => say(`${msg ?? ''} ${JSON.stringify(maskSecrets(obj))}`) }
  const { drainStore, DrainError } = await import('./drain.js')
  const running = drainStore(config, say, logger)
  const stop = (): void => {
    say('stopping: what Broker1 has not acked stays in the store')
    void running.stop()
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  try {
    await running.done
  } catch (err) {
    if (err instanceof DrainError) fail([`drain: ${redactText(err.message, config)}`], 1)
    throw err
  }
  process.exit(0)
}

async function serve (options: Options): Promise<void> {
  const { config, given } = configure(options)
  if (options.printConfig === true) {
    process.stdout.write(`${JSON.stringify(printableConfig(config, mergeSources(given).merged), null, 2)}\n`)
    return
  }
  const logger = pino({
    level: config.logLevel,
    base: { name: NAME, pid: process.pid, hostname: hostname() },
    redact: { paths: ['password', '*.password', '*.*.password'], censor: '***' }
  })
  let tier
  try {
    // Loaded only now, so that --help, --version and config errors never load Aedes or the store.
    const { createAccessTier } = await import('./server.js')
    tier = await createAccessTier(config, { logger })
  } catch (err) {
    // The server validates its options again; should it refuse them, that is still a config error.
    const { problems } = err as { problems?: unknown }
    if (Array.isArray(problems)) fail(problems.map((p) => redactText(String(p), config)), EXIT_USAGE)
    const message = redactText(err instanceof Error ? err.message : String(err), config)
    logger.fatal({ code: (err as { code?: unknown }).code }, `cannot start: ${message}`)
    fail([`cannot start: ${message}`], 1)
  }
  // The server itself logs that embedded brokers stand in, when it starts them.
  logger.info(maskSecrets(tier.addresses), 'listening')

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while stopping, exiting now')
      process.exit(1)
    }
    stopping = true
    const { drainDelayMs } = config.http
    logger.info({ signal, ...(drainDelayMs > 0 && config.http.port !== undefined && { drainDelayMs }) }, 'stopping')
    // The drain delay is the operator's choice: only what follows it is bounded.
    const timeoutMs = CLOSE_TIMEOUT_MS + (config.http.port === undefined ? 0 : drainDelayMs)
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'stopping took too long, exiting anyway')
      process.exit(1)
    }, timeoutMs)
    tier.close().then(() => {
      clearTimeout(timer)
      logger.info('stopped')
      process.exit(0)
    }, (err: unknown) => {
      logger.error({ err: redactText(String(err), config) }, 'error while stopping')
      process.exit(1)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // As mosquitto does: SIGHUP reads the configuration again. What cannot change live is named, not applied.
  const running = tier
  process.on('SIGHUP', () => {
    if (stopping) return
    let next: ResolvedServerConfig
    try {
      next = resolveConfig(sources(options))
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      logger.error({ problems: err.problems.map((p) => redactText(p, config)) }, 'config reload failed: the running configuration stays')
      return
    }
    logger.info(running.reconfigure(next), 'config reloaded')
  })
}

/** package.json is one folder up from src/cli.ts and two from dist/src/cli.js. */
function packageVersion (): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === NAME && pkg.version !== undefined) return pkg.version
    } catch {}
  }
  return 'unknown'
}

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
