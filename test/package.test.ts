/**
 * What a user installs: HEAD packed as `npm pack` packs a clean clone, installed into an empty
 * project, its bin started, and a consumer of every export type-checked with tsc --strict.
 * Offline: the dependencies come from npm's cache (warm after `npm ci`), resolved through the
 * repository's lockfile so that no registry metadata is needed.
 */
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { copyFileSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string, version: string, dependencies: Record<string, string> }
// tap's loader and variables, and npm's script variables (npm test), are not the installed package's business; npm's config (its cache) is.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP_') && (!k.startsWith('npm_') || k.startsWith('npm_config_'))))
const npm = (args: string[], cwd: string): Promise<{ stdout: string }> => run('npm', args, { cwd, env, maxBuffer: 16 * 1024 * 1024 })

t.test('the packed tarball installs offline, its bin runs the demo, and every export type-checks', { timeout: 110_000 }, async (t) => {
  const work = tempDir(t, 'dual-package-')
  const clone = join(work, 'clone')
  await run('sh', ['-c', `mkdir -p "${clone}" && git archive --format=tar HEAD | tar -x -C "${clone}"`], { cwd: root })
  // The build (prepack) needs tsc and the type packages: the repository's own, not a second install.
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir')
  const packed = JSON.parse((await npm(['pack', '--json', '--pack-destination', work], clone)).stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed[0]!.files.map((f) => f.path)
  for (const wanted of ['dist/src/cli.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/plugins/metrics.js', 'dist/plugins/status/index.js',
    'dist/plugins/sys-topics.js', 'dist/src/server.js', 'dist/src/server.d.ts', 'LICENSE', 'README.md', 'CHANGELOG.md', 'docs/status-page.png',
    'docs/ARCHITECTURE.md', 'examples/policies.yaml', 'examples/custom-broker-build.ts',
    'examples/aedes-dual-broker.service', 'examples/grafana-dashboard.json', 'deploy/kubernetes/statefulset.yaml', 'deploy/Dockerfile']) {
    t.ok(files.includes(wanted), `ships ${wanted}`)
  }
  t.same(files.filter((f) => f.endsWith('.map') || (f.startsWith('src/') || f.startsWith('plugins/'))), [], 'no source maps pointing at sources it does not ship')
  t.match(readFileSync(join(clone, 'LICENSE'), 'utf8'), /^MIT License/)

  const app = join(work, 'app')
  await run('mkdir', [app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }))
  // The repository's lockfile, without its dev tools, pins what the tarball's ranges resolve to.
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const packages = Object.fromEntries(Object.entries(lock.packages).filter(([path, entry]) => path !== '' && entry.dev !== true))
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'consumer', version: '1.0.0' }, ...packages } }))
  await npm(['install', '--offline', '--no-audit', '--no-fund', join(work, packed[0]!.filename)], app)
  const bin = join(app, 'node_modules', '.bin', 'aedes-dual-broker')

  const version = await run(bin, ['--version'], { env })
  t.equal(version.stdout.trim(), pkg.version)

  // The Quick start, on free ports: embedded brokers beside the listener, all on loopback.
  const child = spawn(bin, ['--port', '0', '--data', join(work, 'data')], { cwd: app, env, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      if (entry.msg === 'listening') resolve(entry)
    })
    void exited.then((code) => reject(new Error(`exited ${code} before listening`)))
  })
  t.match(listening, { embeddedBrokers: true, mqtt: { host: '127.0.0.1', port: Number }, broker1: /^mqtt:\/\/127\.0\.0\.1:\d+$/ })
  const terminal = await connectClient(t, `mqtt://127.0.0.1:${(listening.mqtt as { port: number }).port}`, { clientId: 'first-user' })
  await terminal.publishAsync('demo/hello', 'world', { qos: 1 })
  await terminal.endAsync()
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM: exit 0')

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
