/**
 * The CLI (src/cli.ts) as a child process. It runs from its TypeScript source in a plain
 * child node, through the same ts-node loader tap itself uses (@tapjs/typescript/import),
 * so no build step is needed. tap's own NODE_OPTIONS and TAP_* variables are left out:
 * the child is not a tap test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { startAedes } from './aedes-broker.js'
import { tempDir } from './durable.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'src/cli.ts')

/** The environment of a child that runs TypeScript from source (no tap variables). */
export const childEnv: Record<string, string | undefined> = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP_'))),
  TS_NODE_TRANSPILE_ONLY: '1',
  TS_NODE_PROJECT: join(root, 'tsconfig.json')
}

// If the test process dies (e.g. a tap timeout) teardowns do not run: no tier is left behind.
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** node's arguments to run a TypeScript file from source, through tap's own loader. */
export const tsNodeArgs = (file: string): string[] => [`--import=${import.meta.resolve('@tapjs/typescript/import')}`, file]

export interface SpawnOptions {
  /** The child's limit on open files (`ulimit -n`, set by a shell that then execs node); default the test's own. */
  openFiles?: number
  /** Variables added to the child's environment. */
  env?: Record<string, string>
  /** A TypeScript file to run instead of the CLI (a fixture that logs JSON lines as the CLI does). */
  script?: string
}

/** Spawns the CLI with these arguments; stdout and stderr are pipes. */
export function spawnCli (args: string[], options: SpawnOptions = {}): ChildProcess {
  const node = [process.execPath, ...tsNodeArgs(options.script ?? cli), ...args]
  const [command, ...rest] = options.openFiles === undefined
    ? node
    : ['bash', '-c', `ulimit -n ${options.openFiles} && exec "$@"`, 'bash', ...node]
  const child = spawn(command!, rest, { cwd: root, env: { ...childEnv, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

export interface Outcome { code: number | null, stdout: string, stderr: string }

/** Collects a child's output until it exits. */
export function finish (child: ChildProcess): Promise<Outcome> {
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

export const runCli = (args: string[], env?: Record<string, string>): Promise<Outcome> => finish(spawnCli(args, env === undefined ? {} : { env }))

export type LogEntry = Record<string, unknown> & { msg?: string, time?: number }

export interface RunningCli {
  readonly child: ChildProcess
  /** Every JSON log line so far, in order. */
  readonly logs: LogEntry[]
  /** The first log line (already written or future) with this msg that `match` accepts. */
  waitForLog: (msg: string, match?: (entry: LogEntry) => boolean, timeoutMs?: number) => Promise<LogEntry>
  /** Sends the signal and resolves once the process is gone. */
  kill: (signal?: NodeJS.Signals) => Promise<void>
  /** Resolves once the process exited, with its exit code or signal. */
  readonly exited: Promise<number | NodeJS.Signals | null>
  stderr: () => string
}

/** Spawns the CLI and follows its JSON log lines; SIGKILLed at teardown if still running. */
export function followCli (t: Test, args: string[], options: SpawnOptions = {}): RunningCli {
  const child = spawnCli(args, options)
  const logs: LogEntry[] = []
  const waiters = new Set<() => void>()
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogEntry)
    } catch {
      logs.push({ msg: 'non-JSON output', line })
    }
    for (const check of [...waiters]) check()
  })
  let gone = false
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => {
    child.once('close', (code, signal) => {
      gone = true
      for (const check of [...waiters]) check()
      resolve(code ?? signal)
    })
  })
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (!gone) child.kill(signal)
    await exited
  }
  t.teardown(() => kill('SIGKILL'))

  const waitForLog = (msg: string, match: (entry: LogEntry) => boolean = () => true, timeoutMs = 10_000): Promise<LogEntry> => {
    const find = (): LogEntry | undefined => logs.find((entry) => entry.msg === msg && match(entry))
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      const check = (): void => {
        const entry = find()
        if (entry !== undefined) {
          done()
          resolve(entry)
        } else if (gone) {
          done()
          reject(new Error(`the CLI exited before logging "${msg}"\n${stderr}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no "${msg}" log line within ${timeoutMs} ms`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  }
  return { child, logs, waitForLog, kill, exited, stderr: () => stderr }
}

/** Starts the CLI and resolves with it and its MQTT URL once it logged `listening`. */
export async function startCli (t: Test, args: string[], timeoutMs = 20_000, options: SpawnOptions = {}): Promise<RunningCli & { url: string }> {
  const running = followCli(t, args, options)
  const listening = await running.waitForLog('listening', () => true, timeoutMs)
  const { host, port } = listening.mqtt as { host: string, port: number }
  return { ...running, url: `mqtt://${host}:${port}` }
}

/**
 * A config file for the CLI in a fresh temporary folder: loopback listeners on ephemeral ports
 * (MQTT and the status server), a data dir beside it, two Aedes brokers in this test process,
 * and the given limits (YAML flow mapping text, e.g. "{ connectionRatePerSecond: 0 }").
 */
export async function tierConfigFile (t: Test, limits: string): Promise<string> {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const dir = tempDir(t)
  const config = join(dir, 'tier.yaml')
  writeFileSync(config, [
    'listen: { host: 127.0.0.1, port: 0 }', 'http: { port: 0 }', `data: ${join(dir, 'data')}`,
    `broker1: { url: "${b1.url}" }`, `broker2: { url: "${b2.url}" }`, `limits: ${limits}`
  ].join('\n'))
  return config
}
