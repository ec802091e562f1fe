/**
 * The CLI (src/cli.ts) as a child process. It runs from its TypeScript source in a plain
 * child node, through the same ts-node loader tap itself uses (@tapjs/typescript/import),
 * so no build step is needed. tap's own NODE_OPTIONS and TAP_* variables are left out:
 * the child is not a tap test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

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

/** Spawns the CLI with these arguments; stdout and stderr are pipes. */
export function spawnCli (args: string[]): ChildProcess {
  const child = spawn(process.execPath, [...tsNodeArgs(cli), ...args], {
    cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe']
  })
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

export const runCli = (args: string[]): Promise<Outcome> => finish(spawnCli(args))

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
export function followCli (t: Test, args: string[]): RunningCli {
  const child = spawnCli(args)
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
export async function startCli (t: Test, args: string[], timeoutMs = 20_000): Promise<RunningCli & { url: string }> {
  const running = followCli(t, args)
  const listening = await running.waitForLog('listening', () => true, timeoutMs)
  const { host, port } = listening.mqtt as { host: string, port: number }
  return { ...running, url: `mqtt://${host}:${port}` }
}
