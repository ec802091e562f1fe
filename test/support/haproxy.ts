/**
 * A real haproxy process (Debian's package) in front of tier nodes, configured from
 * examples/haproxy.cfg itself: only the addresses, the check timing and what a foreground test
 * process cannot have (chroot, user, daemon, syslog, the connection limit) are rewritten, so the example's shape — TCP
 * mode, leastconn, retries and redispatch, GET /health expecting 200 — is what the test runs.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { freePort } from './ports.js'

const HAPROXY = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy'
const EXAMPLE = fileURLToPath(new URL('../../examples/haproxy.cfg', import.meta.url))

export interface BalancedNode { name: string, mqttPort: number, wsPort: number, httpPort: number }

export interface ServerStat { backend: string, server: string, status: string, checkStatus: string, checkCode: string, current: number }

export interface Haproxy {
  readonly mqttUrl: string
  readonly wsUrl: string
  readonly configText: string
  stats: () => Promise<ServerStat[]>
  /** Polls the stats socket (every 20 ms) until `server` of `backend` has `status`; resolves with that row and when it was seen. */
  waitFor: (backend: string, server: string, status: string, timeoutMs?: number) => Promise<ServerStat & { at: number }>
  kill: () => Promise<void>
}

const live = new Set<ChildProcess>()
process.once('exit', () => { for (const child of live) child.kill('SIGKILL') })

/** The example with these nodes, listen ports and check timing; throws when the example lost a part the rewrite expects. */
export function configFromExample (example: string, options: { nodes: BalancedNode[], mqttPort: number, wsPort: number, socket: string, inter: string }): string {
  const found = new Set<string>()
  const out: string[] = []
  let backend = ''
  for (const line of example.split('\n')) {
    const section = /^(global|defaults|frontend|backend)\s*(\S*)/.exec(line)
    if (section !== null) backend = section[1] === 'backend' ? section[2]! : ''
    if (/^\s*(log \/dev\/log|chroot|user|group|daemon)\b/.test(line)) continue
    if (/^\s*stats socket /.test(line)) {
      out.push(`    stats socket ${options.socket} level admin`)
      found.add('stats')
    } else if (/^\s*maxconn \d+\s*$/.test(line)) {
      // haproxy needs two descriptors per connection: the example's would exceed a test process's limit.
      out.push('    maxconn 4000')
      found.add('maxconn')
    } else if (/^\s*default-server /.test(line)) {
      out.push(`    default-server inter ${options.inter} fall 1 rise 1`)
      found.add('default-server')
    } else if (/^\s*bind :1883\s*$/.test(line) || /^\s*bind :8080\s*$/.test(line)) {
      out.push(`    bind 127.0.0.1:${line.includes(':1883') ? options.mqttPort : options.wsPort}`)
      found.add(line.trim())
    } else if (/^\s*server \S+ \S+:(1883|8080) check port 9464\s*$/.test(line)) {
      if (found.has(`servers ${backend}`)) continue
      found.add(`servers ${backend}`)
      const ws = line.includes(':8080')
      for (const node of options.nodes) out.push(`    server ${node.name} 127.0.0.1:${ws ? node.wsPort : node.mqttPort} check port ${node.httpPort}`)
    } else {
      out.push(line)
    }
  }
  for (const part of ['stats', 'maxconn', 'default-server', 'bind :1883', 'bind :8080', 'servers tier_mqtt', 'servers tier_ws']) {
    if (!found.has(part)) throw new Error(`examples/haproxy.cfg: no "${part}" line of the expected shape`)
  }
  return out.join('\n')
}

/** haproxy in the foreground, in front of `nodes`; resolves once every server of both backends is UP. */
export async function startHaproxy (t: Test, nodes: BalancedNode[], inter = '200ms'): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'haproxy-'))
  const socket = join(dir, 'admin.sock')
  const [mqttPort, wsPort] = [await freePort(), await freePort()]
  const configText = configFromExample(readFileSync(EXAMPLE, 'utf8'), { nodes, mqttPort, wsPort, socket, inter })
  const configPath = join(dir, 'haproxy.cfg')
  writeFileSync(configPath, configText)
  const child = spawn(HAPROXY, ['-db', '-f', configPath], { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  const output: string[] = []
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => output.push(line))
  const exited = new Promise<void>((resolve) => child.once('close', () => { live.delete(child); resolve() }))
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(async () => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })

  const stats = async (): Promise<ServerStat[]> => parseStats(await command(socket, 'show stat'))
  const waitFor = async (backend: string, server: string, status: string, timeoutMs = 10_000): Promise<ServerStat & { at: number }> => {
    const until = Date.now() + timeoutMs
    let last: ServerStat | undefined
    for (;;) {
      if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}):\n${output.join('\n')}`)
      last = (await stats().catch(() => [])).find((row) => row.backend === backend && row.server === server)
      if (last?.status === status) return { ...last, at: Date.now() }
      if (Date.now() > until) throw new Error(`haproxy: ${backend}/${server} not ${status} within ${timeoutMs} ms (${JSON.stringify(last)})\n${output.join('\n')}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  for (const backend of ['tier_mqtt', 'tier_ws']) for (const node of nodes) await waitFor(backend, node.name, 'UP')
  return { mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, wsUrl: `ws://127.0.0.1:${wsPort}`, configText, stats, waitFor, kill }
}

/** One command on haproxy's stats socket; the answer is everything until it closes. */
function command (socket: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = ''
    const connection = net.connect(socket, () => connection.end(`${line}\n`))
    connection.setEncoding('utf8')
    connection.on('data', (chunk: string) => { answer += chunk })
    connection.once('error', reject)
    connection.once('close', () => resolve(answer))
  })
}

/** `show stat` is CSV with a "# " header line naming the columns. */
function parseStats (csv: string): ServerStat[] {
  const [header, ...rows] = csv.trim().split('\n')
  if (header === undefined || !header.startsWith('# ')) return []
  const columns = header.slice(2).split(',')
  const at = (name: string): number => columns.indexOf(name)
  return rows.map((row) => row.split(',')).filter((cells) => cells[at('svname')] !== 'FRONTEND' && cells[at('svname')] !== 'BACKEND').map((cells) => ({
    backend: cells[at('pxname')]!,
    server: cells[at('svname')]!,
    status: cells[at('status')]!,
    checkStatus: cells[at('check_status')]!,
    checkCode: cells[at('check_code')]!,
    current: Number(cells[at('scur')])
  }))
}
