import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, resolveConfig } from '../src/config/load.js'
import { runCli, startCli, type Outcome } from './support/cli-process.js'
import { tempDir } from './support/durable.js'
import { random } from './support/fuzz.js'

const SECRET = 'Pw9SecretXq7'
const PEM = `-----BEGIN PRIVATE KEY-----\\n${SECRET}\\n-----END PRIVATE KEY-----`
/** Brokers nobody listens on, and a short wait for them: the cases that get past validation fail fast. */
const NOWHERE = 'mqtt://127.0.0.1:9'
const QUICK = 'health: { connectTimeoutMs: 100 }'

function configFile (t: Test, name: string, text: string): string {
  const dir = tempDir(t)
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** Every byte the CLI printed, on both streams. */
const printed = (outcome: Outcome): string => outcome.stdout + outcome.stderr

t.test('a secret given in a malformed value never appears in anything the CLI prints', async (t) => {
  const dir = tempDir(t)
  const data = `data: ${join(dir, 'data')}`
  const file = (lines: string[]): string[] => ['--config', configFile(t, 'c.yaml', [data, QUICK, ...lines].join('\n'))]
  // Each run carries as many cases as end in one exit: every validation problem is reported at once.
  const cases: Record<string, { args: string[], env?: Record<string, string> }> = {
    '--broker1 with a bad scheme, --broker2 with a bad port': { args: ['--broker1', `mqtp://u:${SECRET}@host`, '--broker2', `mqtt://u:${SECRET}@host:99999`] },
    '--broker1 with a / in the password and no host, --broker2 without a scheme': { args: ['--broker1', `mqtt://u:a/${SECRET}@`, '--broker2', `u:${SECRET}@host`] },
    'in the file: a bad URL scheme, a token as URL user, passwords and service of the wrong type, key as a number, a URL as a key': {
      args: file([
        `broker1: { url: "mqtp://u:${SECRET}@host", password: [${SECRET}], service: ${SECRET}, key: 7${SECRET.length}${SECRET.length}, "mqtt://u:${SECRET}@h": 1 }`,
        `broker2: { url: "mqtp://${SECRET}@host", password: { value: ${SECRET} }, service: { password: [${SECRET}], pasword: ${SECRET} } }`
      ])
    },
    'broker1 given as a URL string': { args: file([`broker1: "mqtt://u:${SECRET}@host"`, `broker2: { url: ${NOWHERE} }`]) },
    'key material where a path belongs': { args: file([`broker1: { url: ${NOWHERE}, key: "${PEM}" }`, `broker2: { url: ${NOWHERE} }`]) },
    'listen.tls.key material where a path belongs': { args: file([`listen: { host: 127.0.0.1, port: 0, tls: { port: 0, cert: /nonexistent.pem, key: "${PEM}" } }`, `broker1: { url: ${NOWHERE} }`, `broker2: { url: ${NOWHERE} }`]) },
    'a YAML error next to the password': { args: file([`broker1: { url: ${NOWHERE}, password: "${SECRET} }`]) },
    'a JSON error next to the password': { args: ['--config', configFile(t, 'c.json', `{ "broker1": { "url": "${NOWHERE}", "password": ${SECRET} } }`)] },
    'password from the environment, with a bad URL': { args: ['--broker1', 'mqtp://host', '--broker2', NOWHERE], env: { AEDES_DUAL_BROKER_BROKER1_PASSWORD: SECRET } }
  }
  // Two at a time: each run is a node start, and other test files start the CLI with a deadline meanwhile.
  const outcomes: Array<readonly [string, Outcome]> = []
  const queue = Object.entries(cases)
  await Promise.all([0, 1].map(async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [name, { args, env }] = next
      outcomes.push([name, await runCli(args, env)])
    }
  }))
  outcomes.sort(([a], [b]) => Object.keys(cases).indexOf(a) - Object.keys(cases).indexOf(b))
  for (const [name, outcome] of outcomes) {
    t.ok(outcome.code === 2 || outcome.code === 1, `${name}: refused (exit ${outcome.code})`)
    t.ok(outcome.stderr.length > 0, `${name}: says why`)
    t.notOk(printed(outcome).includes(SECRET), `${name}: the secret is not printed`)
    t.notOk(printed(outcome).includes(`7${SECRET.length}${SECRET.length}`), `${name}: nor the number given as key`)
  }
  t.match(outcomes[0]![1].stderr, /mqtp:\/\/u:\*\*\*@host/, 'a masked URL still shows what is wrong with it')
})

t.test('hostile config files are refused with exit 2 and a bounded message', async (t) => {
  const dir = tempDir(t)
  const rand = random(12)
  const junk = (bytes: number): Buffer => Buffer.from(Array.from({ length: bytes }, () => Math.floor(rand() * 256)))
  const keys = (n: number): string => Array.from({ length: n }, (_, i) => `k${i}: 1`).join('\n')
  const aliasBomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(', ')}]`)].join('\n')
  const files: Record<string, { path: string, expect: RegExp }> = {
    '10 MB of junk YAML': { path: join(dir, 'big.yaml'), expect: /big\.yaml: larger than 1 MiB/ },
    '/dev/zero': { path: '/dev/zero', expect: /\/dev\/zero: larger than 1 MiB/ },
    'random bytes just under 1 MiB': { path: join(dir, 'random.yaml'), expect: /random\.yaml/ },
    'a YAML alias bomb': { path: join(dir, 'bomb.yaml'), expect: /bomb\.yaml: invalid YAML: .*alias.*at most 100 aliases/ },
    'deeply nested JSON': { path: join(dir, 'deep.json'), expect: /deep\.json: nested more than 32 levels deep/ },
    'deeply nested YAML blocks': { path: join(dir, 'deep.yaml'), expect: /deep\.yaml: nested more than 32 levels deep/ },
    '100,000 unknown keys': { path: join(dir, 'keys.yaml'), expect: /^aedes-dual-broker: k0: unknown key/m },
    '100,000 repeated keys': { path: join(dir, 'dup.yaml'), expect: /dup\.yaml line 2, column 1: invalid YAML: map keys must be unique/ }
  }
  writeFileSync(files['10 MB of junk YAML']!.path, junk(10 * 1024 * 1024))
  writeFileSync(files['random bytes just under 1 MiB']!.path, junk(1024 * 1024 - 1))
  writeFileSync(files['a YAML alias bomb']!.path, aliasBomb)
  writeFileSync(files['deeply nested JSON']!.path, '['.repeat(100_000) + ']'.repeat(100_000))
  writeFileSync(files['deeply nested YAML blocks']!.path, Array.from({ length: 40 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n')
  writeFileSync(files['100,000 unknown keys']!.path, keys(100_000))
  writeFileSync(files['100,000 repeated keys']!.path, Array(100_000).fill('data: x').join('\n'))
  for (const [name, { path, expect }] of Object.entries(files)) {
    const started = performance.now()
    const outcome = await runCli(['--config', path])
    const ms = performance.now() - started
    const lines = outcome.stderr.trimEnd().split('\n')
    t.equal(outcome.code, 2, `${name}: exit 2`)
    t.match(outcome.stderr, expect, `${name}: ${lines[0]!.slice(0, 120)}`)
    t.ok(lines.length <= 21 && lines.every((line) => line.length <= 340), `${name}: ${lines.length} lines, ${outcome.stderr.length} bytes on stderr`)
    // Wall-clock on a shared machine, with the CLI's own start (~2 s): a bound against blow-ups (100,000
    // keys took minutes with the quadratic duplicate check), not a measurement.
    t.ok(ms < 20_000, `${name}: ${Math.round(ms)} ms`)
    t.comment(`${name}: exit ${outcome.code} in ${Math.round(ms)} ms, ${outcome.stderr.length} bytes on stderr`)
  }
})

t.test('800,000 unknown keys: their problems in linear time, the first 20 shown and the rest counted', async (t) => {
  const file = Object.fromEntries(Array.from({ length: 800_000 }, (_, i) => [`key${i}`, 1]))
  const started = performance.now()
  let problems: string[] = []
  try {
    resolveConfig({ file })
  } catch (err) {
    if (err instanceof ConfigError) problems = err.problems
  }
  const ms = performance.now() - started
  t.ok(ms < 3000, `${Math.round(ms)} ms`)
  t.equal(problems.length, 21)
  t.equal(problems[0], 'key0: unknown key')
  t.equal(problems.at(-1), '… and 799980 more')
})

t.test('a data dir that cannot be used is named with the cause, exit 1', async (t) => {
  const dir = tempDir(t)
  const brokers = ['--broker1', NOWHERE, '--broker2', NOWHERE]
  writeFileSync(join(dir, 'a-file'), 'x')
  const asFile = await runCli([...brokers, '--data', join(dir, 'a-file')])
  t.equal(asFile.code, 1)
  t.match(asFile.stderr, `data dir ${join(dir, 'a-file')} is a file, not a folder`)

  const readOnly = join(dir, 'ro')
  mkdirSync(readOnly)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly])
  t.teardown(() => { execFileSync('umount', ['-l', readOnly]) })
  const onReadOnly = await runCli([...brokers, '--data', readOnly])
  t.equal(onReadOnly.code, 1)
  t.match(onReadOnly.stderr, `data dir ${readOnly} is read-only (EROFS)`)

  const shared = join(dir, 'shared')
  const config = configFile(t, 'c.yaml', ['listen: { host: 127.0.0.1, port: 0 }', `data: ${shared}`, QUICK].join('\n'))
  const first = await startCli(t, ['--config', config, ...brokers])
  const second = await runCli(['--config', config, ...brokers])
  t.equal(second.code, 1)
  t.match(second.stderr, `data dir ${shared} is in use by another process (PID ${first.child.pid})`)
  await first.kill('SIGTERM')
})
