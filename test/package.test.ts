/**
 * What a user installs: HEAD packed as `npm pack` packs a clean clone, installed into an empty
 * project, its bin started, a consumer of every export type-checked with tsc --strict, every code
 * example run with README's command against two real brokers, and require() answered.
 * Offline: the dependencies come from npm's cache (warm after `npm ci`), resolved through the
 * repository's lockfile so that no registry metadata is needed. Packed and installed once.
 */
import t, { type Test } from 'tap'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { copyFileSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string, version: string, dependencies: Record<string, string> }
// tap's loader and variables, and npm's script variables (npm test), are not the installed package's business; npm's config (its cache) is.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP_') && (!k.startsWith('npm_') || k.startsWith('npm_config_'))))
const npm = (args: string[], cwd: string): Promise<{ stdout: string }> => run('npm', args, { cwd, env, maxBuffer: 16 * 1024 * 1024 })

let work = ''
let clone = ''
let app = ''
let files: string[] = []

t.before(async () => {
  work = tempDir(t, 'dual-package-')
  clone = join(work, 'clone')
  await run('sh', ['-c', `mkdir -p "${clone}" && git archive --format=tar HEAD | tar -x -C "${clone}"`], { cwd: root })
  // The build (prepack) needs tsc and the type packages: the repository's own, not a second install.
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir')
  const packed = JSON.parse((await npm(['pack', '--json', '--pack-destination', work], clone)).stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  files = packed[0]!.files.map((f) => f.path)
  app = join(work, 'app')
  await run('mkdir', [app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }))
  // The repository's lockfile, without its dev tools, pins what the tarball's ranges resolve to.
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const packages = Object.fromEntries(Object.entries(lock.packages).filter(([path, entry]) => path !== '' && entry.dev !== true))
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'consumer', version: '1.0.0' }, ...packages } }))
  await npm(['install', '--offline', '--no-audit', '--no-fund', join(work, packed[0]!.filename)], app)
})

/** A process of the installed package, SIGKILLed at teardown if still running; resolves with its first JSON log line that names the MQTT port it bound. */
async function startListening (t: Test, command: string, args: string[], vars: Record<string, string> = {}): Promise<{ child: ChildProcess, mqtt: { host: string, port: number }, exited: Promise<number | null> }> {
  const child = spawn(command, args, { cwd: app, env: { ...env, ...vars }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const mqtt = await new Promise<{ host: string, port: number }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { mqtt?: { host: string, port: number } } = {}
      try { entry = JSON.parse(line) as typeof entry } catch { t.comment(line) }
      if (typeof entry.mqtt?.port === 'number') resolve(entry.mqtt)
    })
    void exited.then((code) => reject(new Error(`${args[0] ?? command} exited ${code} before listening`)))
  })
  return { child, mqtt, exited }
}

t.test('the tarball ships what users need and nothing that points at what it does not', async (t) => {
  for (const wanted of ['dist/src/cli.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/plugins/metrics.js', 'dist/plugins/status/index.js',
    'dist/plugins/sys-topics.js', 'dist/src/server.js', 'dist/src/server.d.ts', 'esm-only.cjs', 'LICENSE', 'README.md', 'CHANGELOG.md', 'docs/status-page.png',
    'docs/ARCHITECTURE.md', 'examples/policies.yaml', 'examples/custom-broker-build.mjs', 'examples/embed-existing-aedes.mjs',
    'examples/aedes-dual-broker.service', 'examples/grafana-dashboard.json', 'deploy/kubernetes/statefulset.yaml', 'deploy/Dockerfile']) {
    t.ok(files.includes(wanted), `ships ${wanted}`)
  }
  t.same(files.filter((f) => f.endsWith('.map') || (f.startsWith('src/') || f.startsWith('plugins/'))), [], 'no source maps pointing at sources it does not ship')
  t.match(readFileSync(join(clone, 'LICENSE'), 'utf8'), /^MIT License/)
})

t.test('its bin runs the demo', async (t) => {
  const bin = join(app, 'node_modules', '.bin', 'aedes-dual-broker')
  const version = await run(bin, ['--version'], { env })
  t.equal(version.stdout.trim(), pkg.version)

  // The Quick start, on free ports: embedded brokers beside the listener, all on loopback.
  const demo = await startListening(t, bin, ['--port', '0', '--data', join(work, 'data')])
  t.equal(demo.mqtt.host, '127.0.0.1')
  const terminal = await connectClient(t, `mqtt://127.0.0.1:${demo.mqtt.port}`, { clientId: 'first-user' })
  await terminal.publishAsync('demo/hello', 'world', { qos: 1 })
  await terminal.endAsync()
  demo.child.kill('SIGTERM')
  t.equal(await demo.exited, 0, 'SIGTERM: exit 0')
})

t.test('every export type-checks and is used by the consumer', async (t) => {
  // Every export, as a user's strict TypeScript sees the installed declarations (theirs and their dependencies').
  const consumer = join(root, 'test', 'fixtures', 'consumer')
  for (const file of ['index.ts', 'tsconfig.json']) copyFileSync(join(consumer, file), join(app, file))
  const tsc = join(root, 'node_modules', '.bin', 'tsc')
  const checked = await run(tsc, ['-p', join(app, 'tsconfig.json'), '--typeRoots', join(root, 'node_modules', '@types')], { cwd: app, env }).then(() => '', (err: { stdout: string }) => err.stdout)
  t.equal(checked, '', 'tsc --strict finds nothing to complain about')

  // The values the consumer imports from each entry point (not its `type` imports) are all the entry point has.
  const source = readFileSync(join(consumer, 'index.ts'), 'utf8')
  for (const [, list, entry] of source.matchAll(/import \{([^}]*)\} from '(aedes-dual-broker[^']*)'/g)) {
    const named = list!.split(',').map((name) => name.trim().split(' as ')[0]!).filter((name) => name !== '' && !name.startsWith('type '))
    const exported = await run(process.execPath, ['--input-type=module', '-e', `console.log(JSON.stringify(Object.keys(await import('${entry}'))))`], { cwd: app, env })
    t.same((JSON.parse(exported.stdout) as string[]).sort(), named.sort(), `the consumer uses every runtime export of ${entry}`)
  }
})

t.test('require() of any entry point says the package is ESM-only and how to load it', async (t) => {
  const exported = JSON.parse(readFileSync(join(app, 'node_modules', pkg.name, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
  const entries = Object.keys(exported.exports).filter((key) => key !== './package.json').map((key) => pkg.name + key.slice(1))
  t.ok(entries.length >= 5, `${entries.length} entry points`)
  const script = `for (const entry of ${JSON.stringify(entries)}) { try { require(entry); console.log(JSON.stringify({ entry })) } catch (err) { console.log(JSON.stringify({ entry, code: err.code, message: err.message })) } }`
  const answers = (await run(process.execPath, ['-e', script], { cwd: app, env })).stdout.trim().split('\n').map((line) => JSON.parse(line) as { entry: string, code?: string, message?: string })
  t.equal(answers.length, entries.length)
  for (const answer of answers) {
    t.equal(answer.code, 'ERR_REQUIRE_ESM', `require('${answer.entry}') throws a coded error`)
    t.match(answer.message, /ESM-only.*import\(\)/, `require('${answer.entry}') names the fix`)
  }
})

t.test('every code example runs with the command README gives, from the installed package, against two real brokers', async (t) => {
  const readme = readFileSync(join(app, 'node_modules', pkg.name, 'README.md'), 'utf8')
  const examples = files.filter((f) => /^examples\/[^/]+\.(m?[jt]s|cjs)$/.test(f)).map((f) => f.slice('examples/'.length)).sort()
  const commands = [...readme.matchAll(/^node (node_modules\/aedes-dual-broker\/examples\/(\S+)) --broker1 \S+ --broker2 \S+$/gm)]
  t.same(commands.map((c) => c[2]).sort(), examples, 'README gives a command for each code file in examples/')
  const broker1 = await startAedes(t)
  const broker2 = await startAedes(t)
  const watcher = await connectClient(t, broker1.url, { clientId: 'watcher' })
  await watcher.subscribeAsync('examples/#', { qos: 1 })
  for (const [, path, name] of commands) {
    // The brokers as flags, the free ports as environment: both ways are the examples' documented ones.
    const ready = await startListening(t, process.execPath, [path!, '--broker1', broker1.url, '--broker2', broker2.url], { PORT: '0', HTTP_PORT: '0' })
    t.equal(ready.mqtt.host, '127.0.0.1', `${name} listens on loopback`)
    // sensor-1: a device the embedding example's own authenticate hook knows.
    const terminal = await connectClient(t, `mqtt://127.0.0.1:${ready.mqtt.port}`, { clientId: 'sensor-1' })
    await terminal.subscribeAsync(`examples/${name}`, { qos: 1 })
    const topic = `examples/${name}`
    const through: string[] = []
    const upstream: string[] = []
    const all = new Promise<void>((resolve) => {
      const check = (): void => { if (through.length === 5 && upstream.length === 5) resolve() }
      terminal.on('message', (got, payload) => { if (got === topic) through.push(payload.toString()); check() })
      watcher.on('message', (got, payload) => { if (got === topic) upstream.push(payload.toString()); check() })
    })
    for (let seq = 1; seq <= 5; seq++) await terminal.publishAsync(topic, String(seq), { qos: 1 })
    await all
    t.same(upstream, ['1', '2', '3', '4', '5'], `${name}: all 5 at Broker1, in order`)
    t.same(through, ['1', '2', '3', '4', '5'], `${name}: all 5 back to the terminal through the tier, in order`)
    await terminal.endAsync()
    ready.child.kill('SIGTERM')
    t.equal(await ready.exited, 0, `${name}: SIGTERM: exit 0`)
  }
})
