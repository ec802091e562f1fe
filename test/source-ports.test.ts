/**
 * `broker*.localAddresses`: a node's upstream sockets to one broker address are capped by one
 * source address's ephemeral port range; a pool of source addresses lifts the cap, and a pool
 * that runs out refuses the terminal cleanly (CONNACK 3), said in the log and counted
 * (`dualbroker_refused_total{reason="source-ports"}`). Each case runs in its own network
 * namespace (root), whose port range is narrowed to 51 ports (40000–40050) to reach the cap
 * with a few dozen terminals instead of 28,000.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { childEnv, finish, tsNodeArgs } from './support/cli-process.js'

const SCENARIO = fileURLToPath(new URL('./fixtures/source-ports/scenario.ts', import.meta.url))
const TERMINALS = 80
const RANGE = 51

interface Outcome {
  outcomes: Array<number | string>
  counter: number
  metric: string | undefined
  clients: number
  usage: Array<Record<string, number>>
  healthFrom: Array<string | undefined>
  warnings: Array<Record<string, unknown>>
}

async function scenario (pool1: string[], pool2: string[]): Promise<Outcome> {
  const command = [process.execPath, ...tsNodeArgs(SCENARIO), String(TERMINALS), pool1.join(','), pool2.join(',')]
  const quoted = command.map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')
  const child = spawn('unshare', ['-n', 'bash', '-c', `ip link set lo up && sysctl -q -w net.ipv4.ip_local_port_range='40000 40050' && exec ${quoted}`], {
    env: childEnv, stdio: ['ignore', 'pipe', 'pipe']
  })
  const { code, stdout, stderr } = await finish(child)
  if (code !== 0) throw new Error(`scenario exited ${code}:\n${stderr}`)
  return JSON.parse(stdout) as Outcome
}

const loopback = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `127.0.0.${from + i}`)
const accepted = (o: Outcome): number => o.outcomes.filter((x) => x === 0).length

t.test('one source address per broker: the terminals past its port range are refused with CONNACK 3, logged and counted', { timeout: 60_000 }, async (t) => {
  for (const [name, pools] of [['the system\'s choice (EADDRNOTAVAIL)', [[], []]], ['a pool of one address (EADDRINUSE)', [['127.0.0.2'], ['127.0.0.3']]]] as const) {
    const o = await scenario([...pools[0]], [...pools[1]])
    const refused = o.outcomes.filter((x) => x === 3).length
    t.ok(accepted(o) > 0 && accepted(o) <= RANGE + 1, `${name}: ${accepted(o)} of ${TERMINALS} terminals got in: about one port range (${RANGE}; one more may be let in degraded, on one broker)`)
    t.equal(refused, TERMINALS - accepted(o), `${name}: every other one was refused with CONNACK 3, none left hanging`)
    t.equal(o.counter, refused, `${name}: each refusal counted`)
    t.equal(o.metric, String(refused), `${name}: dualbroker_refused_total{reason="source-ports"} says so`)
    t.match(o.warnings.find((w) => w.reason === 'source-ports'), { level: 'warn', reason: 'source-ports', detail: /no free source port/ }, `${name}: logged with its reason`)
    t.equal(o.clients, accepted(o), `${name}: the accepted terminals are all served`)
  }
})

t.test('a pool of source addresses holds more upstream sockets to one broker address than one port range allows', { timeout: 60_000 }, async (t) => {
  const o = await scenario(loopback(2, 5), loopback(6, 9))
  t.equal(accepted(o), TERMINALS, `all ${TERMINALS} terminals got in: ${TERMINALS} sockets to each broker address, over ${RANGE} ports per source address`)
  t.equal(o.counter, 0, 'nothing refused')
  t.equal(o.metric, '0')
  t.same(o.healthFrom, ['127.0.0.2', '127.0.0.6'], 'the tier\'s own health links connect from the first address of each pool')
  for (const usage of o.usage) {
    const counts = Object.values(usage)
    t.ok(Math.max(...counts) - Math.min(...counts) <= 1, `the pool is used evenly (${JSON.stringify(usage)})`)
  }
})
