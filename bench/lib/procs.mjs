// Every process the benchmark starts is registered here and killed at the end,
// whatever the end is: normal exit, an error, a timeout or a signal.
import { execSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { LeanClient } from './mqtt-lean.mjs'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BENCH = path.join(ROOT, 'bench')
const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto'
/**
 * The build the tier runs from. run.mjs points it at a private copy of dist/
 * (bench/.snapshot/), so that a rebuild by someone else during a run cannot
 * mix two versions of the code into one set of results.
 */
export const build = { dist: path.join(ROOT, 'dist') }

/** Copies dist/ (and package.json, for --version) to bench/.snapshot/ and runs the tier from there. */
export function snapshotDist () {
  const root = path.join(BENCH, '.snapshot')
  fs.rmSync(root, { recursive: true, force: true })
  fs.mkdirSync(root, { recursive: true })
  fs.cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true })
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'))
  build.dist = path.join(root, 'dist')
  return root
}

const live = new Set()
let tmpRoot

/** A temp folder for this run; removed by killAll(). */
export function tmpDir (prefix) {
  tmpRoot ??= fs.mkdtempSync(path.join(os.tmpdir(), 'dual-bench-'))
  return fs.mkdtempSync(path.join(tmpRoot, `${prefix}-`))
}

function track (child, name) {
  const entry = { child, name, exited: false }
  entry.exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      entry.exited = true
      live.delete(entry)
      resolve({ code, signal })
    })
    child.once('error', () => {
      entry.exited = true
      live.delete(entry)
      resolve({ code: null, signal: null })
    })
  })
  live.add(entry)
  return entry
}

/** SIGKILL (after SIGCONT, for frozen ones) every process still running; synchronous, so it also works in 'exit'. */
export function killAll () {
  for (const { child } of live) {
    try { child.kill('SIGCONT') } catch {}
    try { child.kill('SIGKILL') } catch {}
  }
  live.clear()
  if (tmpRoot !== undefined && process.env.BENCH_KEEP_TMP === undefined) {
    try { fs.rmSync(tmpRoot, { recursive: true, force: true }) } catch {}
    tmpRoot = undefined
  }
}

let hooked = false
export function installCleanup (onSignal) {
  if (hooked) return
  hooked = true
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      onSignal?.(signal)
      killAll()
      process.exit(130)
    })
  }
}

/** Runs `argv` with the open-files limit raised to the hard limit (mosquitto's default is 1024). */
function withFdLimit (argv) {
  const quoted = argv.map((a) => `'${String(a).replaceAll("'", "'\\''")}'`).join(' ')
  return ['bash', ['-c', `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${quoted}`]]
}

export function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function connackWithin (url, ms) {
  const client = new LeanClient({ url, clientId: `probe-${process.pid}-${Math.random().toString(36).slice(2)}`, connectTimeoutMs: ms })
  try {
    await client.connect()
    return true
  } catch {
    return false
  } finally {
    client.destroy()
  }
}

/**
 * How the bench's mosquitto is configured: `defaults` (as installed: a 20-message window per
 * 3.1.1 session, Nagle on) or `tuned` (`max_inflight_messages 0`, `set_tcp_nodelay true`).
 */
export const BROKER_SETTINGS = process.env.BENCH_BROKER === 'tuned' ? 'tuned' : 'defaults'

/**
 * What the tier's upstream sessions speak: `auto` (the product's default: MQTT 5 at mosquitto),
 * or `BENCH_UPSTREAM=4` / `5` to compare the two at the same broker.
 */
export const UPSTREAM_PROTOCOL = { 4: 4, 5: 5 }[process.env.BENCH_UPSTREAM ?? ''] ?? 'auto'
/**
 * The protocol of the throughput and latency baselines' clients, straight at Broker1: 3.1.1, or
 * `BENCH_DIRECT=5` for MQTT 5 clients with the tier's window (they announce a Receive Maximum of
 * 100, limits.receiveMaximum's default, and keep within the broker's).
 */
export const DIRECT_PROTOCOL = process.env.BENCH_DIRECT === '5' ? 5 : 4

/** A mosquitto broker on a loopback port, with a config fit for benchmarking (see BROKER_SETTINGS). */
export class Mosquitto {
  constructor (name, port) {
    this.name = name
    this.port = port
    this.url = `mqtt://127.0.0.1:${port}`
    this.dir = tmpDir(`mosq-${name}`)
    this.confPath = path.join(this.dir, 'mosquitto.conf')
    const lines = [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      // Debian's 1000 silently drops QoS 1 bursts to slow subscribers.
      'max_queued_messages 1000000',
      'max_connections -1',
      // The broker's window (max_inflight_messages 20) and Nagle stay as installed, unless the
      // run is labelled `BENCH_BROKER=tuned`: no window at the broker, Nagle off.
      ...(BROKER_SETTINGS === 'tuned' ? ['max_inflight_messages 0', 'set_tcp_nodelay true'] : []),
      'log_dest stderr',
      'log_type error',
      'log_type warning'
    ]
    // As root, mosquitto 2 switches to user "mosquitto", which cannot read our 0700 temp dir.
    if (process.getuid?.() === 0) lines.push('user root')
    fs.writeFileSync(this.confPath, lines.join('\n') + '\n')
    this.entry = undefined
    this.log = []
  }

  static async start (name, port) {
    const broker = new Mosquitto(name, port ?? await freePort())
    await broker.start()
    return broker
  }

  get pid () { return this.entry?.child.pid }
  get running () { return this.entry !== undefined && !this.entry.exited }

  async start () {
    const deadline = Date.now() + 10_000
    for (;;) {
      const [cmd, args] = withFdLimit([MOSQUITTO, '-c', this.confPath])
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      this.entry = track(child, `mosquitto ${this.name}`)
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          this.log.push(line)
          if (this.log.length > 50) this.log.shift()
        })
      }
      while (Date.now() < deadline && !this.entry.exited) {
        if (await connackWithin(this.url, 1000)) {
          if (!this.entry.exited) return
        }
        await sleep(20)
      }
      if (Date.now() >= deadline) break
      await sleep(100) // exited early: the port may linger after a kill; try again
    }
    throw new Error(`mosquitto ${this.name} on port ${this.port} did not start:\n${this.log.join('\n')}`)
  }

  signal (sig) { this.entry?.child.kill(sig) }

  async kill (sig = 'SIGKILL') {
    const entry = this.entry
    if (entry === undefined || entry.exited) return
    entry.child.kill('SIGCONT')
    entry.child.kill(sig)
    await entry.exit
  }

  async stop () {
    const entry = this.entry
    if (entry === undefined || entry.exited) return
    entry.child.kill('SIGCONT')
    entry.child.kill('SIGTERM')
    const done = await Promise.race([entry.exit.then(() => true), sleep(3000).then(() => false)])
    if (!done) await this.kill('SIGKILL')
  }
}

/** The access tier as its command line runs it: `node dist/src/cli.js --config FILE`. */
export class Tier {
  constructor ({ broker1, broker2, data, config = {}, nodeArgs = [] }) {
    this.dir = tmpDir('tier')
    this.data = data ?? path.join(this.dir, 'data')
    this.config = {
      broker1: { url: broker1, protocolVersion: UPSTREAM_PROTOCOL },
      broker2: { url: broker2, protocolVersion: UPSTREAM_PROTOCOL },
      listen: { host: '127.0.0.1', port: 0 },
      data: this.data,
      logLevel: 'info',
      ...config
    }
    this.confPath = path.join(this.dir, 'tier.json')
    fs.writeFileSync(this.confPath, JSON.stringify(this.config, null, 2))
    this.nodeArgs = nodeArgs
    this.logs = []
    this.waiters = new Set()
    this.stderr = ''
  }

  static async start (options) {
    const tier = new Tier(options)
    await tier.start()
    return tier
  }

  get pid () { return this.entry.child.pid }
  get running () { return !this.entry.exited }

  async start (timeoutMs = 20_000) {
    const [cmd, args] = withFdLimit([process.execPath, ...this.nodeArgs, path.join(build.dist, 'src/cli.js'), '--config', this.confPath])
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    this.entry = track(child, 'tier')
    child.stderr.on('data', (chunk) => { this.stderr = (this.stderr + chunk).slice(-4000) })
    createInterface({ input: child.stdout }).on('line', (line) => {
      let entry
      try { entry = JSON.parse(line) } catch { entry = { msg: 'non-JSON output', line } }
      this.logs.push(entry)
      for (const wake of this.waiters) wake()
    })
    const listening = await this.waitForLog('listening', () => true, timeoutMs)
    this.port = listening.mqtt.port
    this.url = `mqtt://127.0.0.1:${this.port}`
    if (listening.http?.port !== undefined) {
      this.httpPort = listening.http.port
      this.httpUrl = `http://127.0.0.1:${listening.http.port}`
    }
  }

  /** GET /health of the status server (when the tier has one: `http.port` set and supported), else undefined. */
  async health () {
    if (this.httpUrl === undefined) return undefined
    try {
      const res = await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(3000) })
      return await res.json()
    } catch {
      return undefined
    }
  }

  /** The first log line (already written or future) with this msg that `match` accepts. */
  waitForLog (msg, match = () => true, timeoutMs = 30_000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.logs.length; i++) {
          const entry = this.logs[i]
          if (entry.msg === msg && match(entry)) { done(); resolve(entry); return true }
        }
        if (this.entry.exited) { done(); reject(new Error(`tier exited while waiting for "${msg}": ${this.stderr}`)); return true }
        return false
      }
      const timer = setTimeout(() => { done(); reject(new Error(`tier: no "${msg}" log within ${timeoutMs} ms`)) }, timeoutMs)
      const done = () => { clearTimeout(timer); this.waiters.delete(check) }
      if (!check()) {
        this.waiters.add(check)
        this.entry.exit.then(check)
      }
    })
  }

  /** SIGTERM (graceful; writes --cpu-prof profiles), SIGKILL after a grace period. */
  async stop (graceMs = 8000) {
    const entry = this.entry
    if (entry === undefined || entry.exited) return
    entry.child.kill('SIGTERM')
    const done = await Promise.race([entry.exit.then(() => true), sleep(graceMs).then(() => false)])
    if (!done) {
      entry.child.kill('SIGKILL')
      await entry.exit
    }
  }
}

/**
 * A benchmark worker (publisher, subscriber, terminals) as a node child process
 * with an IPC channel: `call(cmd, args)` runs one of its commands.
 */
export class Worker {
  constructor (script, name) {
    const [cmd, args] = withFdLimit([process.execPath, path.join(BENCH, script)])
    this.name = name ?? script
    this.child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    this.entry = track(this.child, this.name)
    this.pending = new Map()
    this.nextId = 1
    this.ready = new Promise((resolve, reject) => {
      this.child.once('message', (msg) => msg?.ready ? resolve() : reject(new Error(`${this.name}: bad hello`)))
      this.entry.exit.then(({ code, signal }) => reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready`)))
    })
    this.child.on('message', (msg) => {
      if (msg?.id === undefined) return
      const waiter = this.pending.get(msg.id)
      if (waiter === undefined) return
      this.pending.delete(msg.id)
      if (msg.error !== undefined) waiter.reject(new Error(`${this.name}: ${msg.error}`))
      else waiter.resolve(msg.result)
    })
    this.entry.exit.then(({ code, signal }) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${this.name} exited (${code ?? signal})`))
      this.pending.clear()
    })
  }

  static async start (script, name) {
    const worker = new Worker(script, name)
    await worker.ready
    return worker
  }

  get pid () { return this.child.pid }

  call (cmd, args = {}) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++
      this.pending.set(id, { resolve, reject })
      this.child.send({ id, cmd, args })
    })
  }

  async close () {
    if (this.entry.exited) return
    this.child.kill('SIGKILL')
    await this.entry.exit
  }
}

/** The worker side of `Worker`: answers the parent's commands; exits when the parent is gone. */
export function serve (handlers) {
  process.on('message', async ({ id, cmd, args }) => {
    try {
      const handler = handlers[cmd]
      if (handler === undefined) throw new Error(`unknown command ${cmd}`)
      const result = await handler(args)
      process.send({ id, result })
    } catch (err) {
      process.send({ id, error: err?.stack ?? String(err) })
    }
  })
  process.on('disconnect', () => process.exit(0))
  process.send({ ready: true })
}

/** Monotonic milliseconds on CLOCK_MONOTONIC: the same clock in every process of this machine. */
export function mono () {
  return Number(process.hrtime.bigint()) / 1e6
}

/** Resident set size of a process, kB: VmRSS and VmHWM (peak) from /proc/<pid>/status. */
export function memOf (pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
  } catch {
    return { rss: NaN, hwm: NaN }
  }
}

const CLOCK_TICKS_PER_SECOND = Number(execSync('getconf CLK_TCK').toString().trim()) || 100

/**
 * CPU time a process has used so far, user and system, in µs: fields 14 and 15 of
 * /proc/<pid>/stat (clock ticks; the command name before them may hold spaces, so it is
 * counted from the last ')').
 */
export function cpuOf (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1e6 / CLOCK_TICKS_PER_SECOND
  } catch {
    return NaN
  }
}

/**
 * Read and write syscalls a process has made so far (syscr + syscw of /proc/<pid>/io: every
 * read, recv, write, writev and send, whatever the descriptor). Readable for our own children.
 */
export function syscallsOf (pid) {
  try {
    const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8')
    const count = (name) => Number(io.match(new RegExp(`^${name}: (\\d+)`, 'm'))?.[1])
    return count('syscr') + count('syscw')
  } catch {
    return NaN
  }
}

/** Samples VmRSS every `everyMs` until stopped; returns the peak seen. */
export function sampleRss (pid, everyMs = 50) {
  let peak = 0
  let last = 0
  const timer = setInterval(() => {
    const { rss } = memOf(pid)
    if (Number.isFinite(rss)) {
      last = rss
      if (rss > peak) peak = rss
    }
  }, everyMs)
  return {
    get peak () { return peak },
    get last () { return last },
    stop () { clearInterval(timer); return { peakKb: peak, hwmKb: memOf(pid).hwm } }
  }
}

const HAPROXY = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy'

/**
 * A relay with no MQTT in it, between the clients and Broker1: `node` pipes each connection's
 * bytes both ways (`lib/pipe-proxy.mjs`), `haproxy` does the same in TCP mode. What any relay
 * process adds on this machine, the floor the tier's ratios stand on (the `relay-floor` case).
 */
export class Relay {
  static async start (kind, brokerPort) {
    const relay = new Relay()
    relay.kind = kind
    relay.port = await freePort()
    relay.url = `mqtt://127.0.0.1:${relay.port}`
    let argv
    if (kind === 'node') {
      argv = [process.execPath, path.join(BENCH, 'lib/pipe-proxy.mjs'), String(brokerPort), String(relay.port)]
    } else {
      const conf = path.join(tmpDir('relay'), 'haproxy.cfg')
      fs.writeFileSync(conf, [
        'global', '    maxconn 9000',
        'defaults', '    mode tcp', '    timeout connect 5s', '    timeout client 1h', '    timeout server 1h',
        'listen mqtt', `    bind 127.0.0.1:${relay.port}`, `    server broker1 127.0.0.1:${brokerPort}`, ''
      ].join('\n'))
      argv = [HAPROXY, '-db', '-f', conf]
    }
    const [cmd, args] = withFdLimit(argv)
    relay.entry = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] }), `relay-${kind}`)
    for (let tries = 0; !(await connackWithin(relay.url, 200)); tries++) {
      if (relay.entry.exited || tries > 100) throw new Error(`relay ${kind} did not come up`)
      await sleep(20)
    }
    return relay
  }

  get pid () { return this.entry.child.pid }

  async close () {
    if (this.entry.exited) return
    this.entry.child.kill('SIGKILL')
    await this.entry.exit
  }
}

/**
 * haproxy in the foreground in front of tier nodes, its config made from examples/haproxy.cfg:
 * the nodes' loopback ports in place of the example's servers, a 200 ms check, and what a
 * foreground process cannot have (chroot, user, daemon, syslog) left out.
 */
export class HAProxy {
  static async start (nodes, { maxconn = 9000 } = {}) {
    const proxy = new HAProxy()
    proxy.port = await freePort()
    proxy.url = `mqtt://127.0.0.1:${proxy.port}`
    const dir = tmpDir('haproxy')
    proxy.socket = path.join(dir, 'admin.sock')
    const servers = (ws) => nodes.map((node, i) => `    server node${i + 1} 127.0.0.1:${ws ? node.wsPort ?? node.port : node.port} check port ${node.httpPort}`).join('\n')
    const example = fs.readFileSync(path.join(ROOT, 'examples/haproxy.cfg'), 'utf8')
    const text = example
      .replace(/^\s*(log \/dev\/log|chroot|user|group|daemon)\b.*\n/gm, '')
      .replace(/^(\s*)stats socket .*$/m, `$1stats socket ${proxy.socket} level admin`)
      .replace(/^(\s*)maxconn \d+$/m, `$1maxconn ${maxconn}`)
      .replace(/^(\s*)default-server .*$/m, '$1default-server inter 200ms fall 1 rise 1')
      .replace(/^(\s*)bind :1883$/m, `$1bind 127.0.0.1:${proxy.port}`)
      .replace(/^(\s*)bind :8080$/m, `$1bind 127.0.0.1:${await freePort()}`)
      .replace(/(backend tier_mqtt\n(?:.*\n)*?)((?:\s*server .*\n)+)/, (_, head) => `${head}${servers(false)}\n`)
      .replace(/(backend tier_ws\n(?:.*\n)*?)((?:\s*server .*(?:\n|$))+)/, (_, head) => `${head}${servers(true)}\n`)
    const conf = path.join(dir, 'haproxy.cfg')
    fs.writeFileSync(conf, text)
    const [cmd, args] = withFdLimit([HAPROXY, '-db', '-f', conf])
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    proxy.entry = track(child, 'haproxy')
    proxy.output = ''
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (d) => { proxy.output = (proxy.output + d).slice(-4000) })
    for (let i = 1; i <= nodes.length; i++) await proxy.waitFor(`node${i}`, 'UP')
    return proxy
  }

  get pid () { return this.entry.child.pid }

  /** `show stat` rows of the MQTT backend's servers: { name → status }. */
  async servers () {
    const csv = await new Promise((resolve, reject) => {
      let out = ''
      const c = net.connect(this.socket, () => c.end('show stat\n'))
      c.on('data', (d) => { out += d })
      c.once('error', reject)
      c.once('close', () => resolve(out))
    })
    const [header, ...rows] = csv.trim().split('\n')
    const cols = header.replace(/^# /, '').split(',')
    const at = (name) => cols.indexOf(name)
    return Object.fromEntries(rows.map((r) => r.split(',')).filter((c) => c[at('pxname')] === 'tier_mqtt' && /^node/.test(c[at('svname')])).map((c) => [c[at('svname')], c[at('status')]]))
  }

  async waitFor (server, status, timeoutMs = 10_000) {
    const until = Date.now() + timeoutMs
    for (;;) {
      if (this.entry.exited) throw new Error(`haproxy exited:\n${this.output}`)
      const now = await this.servers().catch(() => ({}))
      if (now[server] === status) return
      if (Date.now() > until) throw new Error(`haproxy: ${server} not ${status} within ${timeoutMs} ms (${JSON.stringify(now)})\n${this.output}`)
      await sleep(20)
    }
  }

  async close () {
    if (this.entry.exited) return
    this.entry.child.kill('SIGKILL')
    await this.entry.exit
  }
}
