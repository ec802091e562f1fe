import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { connackCode } from './client.js'
import { freePort } from './ports.js'

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto'
const MOSQUITTO_PASSWD = process.env.MOSQUITTO_PASSWD_BIN ?? '/usr/bin/mosquitto_passwd'
const READY_TIMEOUT_MS = 10_000
const TERM_GRACE_MS = 5_000
// After a kill the port frees at once (mosquitto sets SO_REUSEADDR), so a
// longer "address in use" means someone else owns it.
const PORT_BUSY_RETRY_MS = 2_000
const LOG_LINES = 50

export interface MosquittoOptions {
  /** Fixed port; default a free one. */
  port?: number
  /** username → password, written with mosquitto_passwd. */
  users?: Record<string, string>
  /** Default: true unless `users` is given. */
  allowAnonymous?: boolean
  /** Raw acl_file text. */
  acl?: string
  /** Default 100000: Debian's 1000 silently drops QoS 1 bursts to slow subscribers. */
  maxQueuedMessages?: number
  /** Per-client outgoing QoS 1/2 window; 0 = unlimited. Default: mosquitto's own (20). */
  maxInflightMessages?: number
  /** Default false. When true, state lives in the temp dir and survives SIGTERM + restart (not SIGKILL). */
  persistence?: boolean
  /** The listener's `max_qos`: SUBACKs grant at most this, and a PUBLISH above it closes the connection. */
  maxQos?: 0 | 1 | 2
}

export interface MosquittoBroker {
  readonly port: number
  readonly url: string
  /** pid of the current process (changes on restart). */
  readonly pid: number | undefined
  readonly dir: string
  readonly confPath: string
  running(): boolean
  /** Last lines of mosquitto's stdout/stderr, across restarts. */
  logs(): string
  /** Calls `listener` with every log line from now on (connections and disconnections among them); returns its removal. */
  onLine(listener: (line: string) => void): () => void
  /** Send a terminating signal and resolve once the process exited. */
  kill(signal?: NodeJS.Signals): Promise<void>
  stop(): void
  cont(): void
  /** Start again on the same port and config (closing the running one first). */
  restart(): Promise<void>
  close(): Promise<void>
}

interface Proc {
  child: ChildProcess
  exited: Promise<void>
  done: boolean
}

// One exit hook for all brokers: if the test process dies (e.g. tap timeout)
// teardowns do not run, and an orphaned mosquitto would keep its port.
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export async function startMosquitto(t: Test, opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosq-'))
  const port = opts.port ?? (await freePort())
  const url = `mqtt://127.0.0.1:${port}`
  const confPath = writeConfig(dir, port, opts)
  const output: string[] = []
  let current: Proc | undefined
  let stopped = false
  let spawns = 0

  const lineListeners = new Set<(line: string) => void>()
  const remember = (line: string): void => {
    for (const listener of lineListeners) listener(line)
    output.push(line)
    if (output.length > LOG_LINES) output.splice(0, output.length - LOG_LINES)
  }
  const logs = (): string => output.join('\n')
  const marker = (): string => `--- spawn #${spawns}: ${MOSQUITTO} -c ${confPath}`

  const spawnOnce = (): Proc => {
    spawns++
    remember(marker())
    const child = spawn(MOSQUITTO, ['-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'] })
    const proc: Proc = { child, done: false, exited: Promise.resolve() }
    // 'close' rather than 'exit': it waits for the pipes, so the final log
    // lines (e.g. "Address already in use") are read. Spawn failures emit
    // 'error' and may never emit 'close'.
    proc.exited = new Promise(resolve => {
      const gone = (): void => {
        proc.done = true
        live.delete(child)
        resolve()
      }
      child.once('close', gone)
      child.once('error', err => {
        remember(`spawn error: ${err.message}`)
        gone()
      })
    })
    // Always drain the pipes: a full pipe would block mosquitto.
    for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', remember)
    live.add(child)
    current = proc
    stopped = false
    return proc
  }

  const waitReady = async (proc: Proc, deadline: number): Promise<string | undefined> => {
    let last = 'none'
    while (Date.now() < deadline) {
      if (proc.done) return `exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready`
      try {
        // Any CONNACK (even a refusal when anonymous is off) proves the listener works.
        await connackCode(url, { connectTimeout: 1000 })
        // ...unless it came from someone else on the port while ours failed to bind.
        if (!proc.done) return undefined
      } catch (err) {
        last = err instanceof Error ? err.message : String(err)
      }
      await Promise.race([sleep(50), proc.exited])
    }
    return `not ready within ${READY_TIMEOUT_MS} ms (last probe: ${last})`
  }

  const close = async (): Promise<void> => {
    const proc = current
    if (proc === undefined || proc.done) return
    // A stopped process would sit on SIGTERM forever.
    proc.child.kill('SIGCONT')
    stopped = false
    proc.child.kill('SIGTERM')
    if (!(await within(proc.exited, TERM_GRACE_MS))) {
      proc.child.kill('SIGKILL')
      await proc.exited
    }
  }

  const launch = async (): Promise<void> => {
    const started = Date.now()
    const deadline = started + READY_TIMEOUT_MS
    for (;;) {
      const proc = spawnOnce()
      const problem = await waitReady(proc, deadline)
      if (problem === undefined) return
      await close()
      // The old listener (ours after a kill, or a stranger) may linger briefly.
      const thisRun = output.slice(Math.max(0, output.lastIndexOf(marker())))
      const portBusy = thisRun.some(line => line.includes('Address already in use'))
      if (!portBusy || Date.now() >= started + PORT_BUSY_RETRY_MS) throw new Error(`mosquitto on port ${port}: ${problem}\n${logs()}`)
      await sleep(100)
    }
  }

  t.teardown(async () => {
    await close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  await launch()

  return {
    port,
    url,
    dir,
    confPath,
    get pid() {
      return current?.child.pid
    },
    running: () => current !== undefined && !current.done,
    logs,
    onLine(listener) {
      lineListeners.add(listener)
      return () => lineListeners.delete(listener)
    },
    async kill(signal = 'SIGKILL') {
      const proc = current
      if (proc === undefined || proc.done) return
      proc.child.kill(signal)
      // Only SIGKILL acts on a stopped process; anything else waits for SIGCONT.
      if (stopped && signal !== 'SIGKILL') proc.child.kill('SIGCONT')
      stopped = false
      await proc.exited
    },
    stop() {
      current?.child.kill('SIGSTOP')
      stopped = true
    },
    cont() {
      current?.child.kill('SIGCONT')
      stopped = false
    },
    async restart() {
      await close()
      await launch()
    },
    close,
  }
}

function writeConfig(dir: string, port: number, opts: MosquittoOptions): string {
  const lines = [
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${opts.allowAnonymous ?? opts.users === undefined}`,
    `max_queued_messages ${opts.maxQueuedMessages ?? 100_000}`,
    `persistence ${opts.persistence === true}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
  ]
  // As root, mosquitto 2 switches to user "mosquitto", which cannot read our 0700 temp dir.
  if (process.getuid?.() === 0) lines.push('user root')
  if (opts.maxQos !== undefined) lines.push(`max_qos ${opts.maxQos}`)
  if (opts.maxInflightMessages !== undefined) lines.push(`max_inflight_messages ${opts.maxInflightMessages}`)
  if (opts.persistence === true) lines.push(`persistence_location ${dir}/`)
  if (opts.users !== undefined) {
    const file = path.join(dir, 'passwd')
    let create = true
    for (const [user, password] of Object.entries(opts.users)) {
      execFileSync(MOSQUITTO_PASSWD, create ? ['-b', '-c', file, user, password] : ['-b', file, user, password])
      create = false
    }
    if (create) fs.writeFileSync(file, '')
    lines.push(`password_file ${file}`)
  }
  if (opts.acl !== undefined) {
    const file = path.join(dir, 'acl')
    fs.writeFileSync(file, opts.acl)
    lines.push(`acl_file ${file}`)
  }
  const confPath = path.join(dir, 'mosquitto.conf')
  fs.writeFileSync(confPath, lines.join('\n') + '\n')
  return confPath
}

/** True if `promise` settled within `ms`; never leaves a timer behind. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>(resolve => {
    timer = setTimeout(() => resolve(false), ms)
  })
  try {
    return await Promise.race([promise.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}
