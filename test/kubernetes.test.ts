/**
 * deploy/kubernetes/ without a cluster: the manifests are parsed and held against the real CLI —
 * the ConfigMap's config validates with the config loader and prints, through the container's
 * own command line, the ports the pod declares and probes; the paths mounted are the paths the
 * config names; the grace period covers what SIGTERM does; the drain Job's command line is one
 * the CLI accepts.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { parseAllDocuments } from 'yaml'
import { loadConfigFile, resolveConfig } from '../src/config/load.js'
import { runCli } from './support/cli-process.js'
import { tempDir } from './support/durable.js'

const DIR = fileURLToPath(new URL('../deploy/kubernetes/', import.meta.url))
const PKG = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string>, version: string }
const BIN = Object.keys(PKG.bin)[0]!
/** What the CLI gives a graceful stop after the drain delay (src/cli.ts). */
const CLOSE_TIMEOUT_MS = Number(/const CLOSE_TIMEOUT_MS = ([\d_]+)/.exec(readFileSync(new URL('../src/cli.ts', import.meta.url), 'utf8'))![1]!.replaceAll('_', ''))

type Doc = Record<string, any>
const docs: Doc[] = readdirSync(DIR).filter((file) => file.endsWith('.yaml')).flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`)
    return doc.toJS() as Doc
  }))
const only = (kind: string, name?: string): Doc => {
  const found = docs.filter((doc) => doc.kind === kind && (name === undefined || doc.metadata.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}`)
  return found[0]!
}

const configMap = only('ConfigMap')
const statefulSet = only('StatefulSet')
const job = only('Job')
const pod = statefulSet.spec.template.spec
const container = pod.containers[0]
const configText = configMap.data['config.yaml'] as string

/** The config file as a mounted path, and the ConfigMap key behind it. */
function mountedConfig (t: Test, spec: Doc, command: string[]): { path: string, key: string } {
  const path = command[command.indexOf('--config') + 1]!
  const mount = spec.containers[0].volumeMounts.find((m: Doc) => path.startsWith(`${m.mountPath}/`))
  const volume = spec.volumes.find((v: Doc) => v.name === mount.name)
  t.equal(volume?.configMap?.name, configMap.metadata.name, `${path} is the ConfigMap's`)
  return { path, key: path.slice(mount.mountPath.length + 1) }
}

t.test('the ConfigMap holds a config the loader accepts, with real brokers, and the container runs the bin on it', async (t) => {
  const file = join(tempDir(t), 'config.yaml')
  writeFileSync(file, configText)
  const config = resolveConfig({ file: loadConfigFile(file) })
  t.ok(config.broker1 !== undefined && config.broker2 !== undefined, 'two brokers: not the demo')
  t.equal(config.http.host, '0.0.0.0', 'the status server takes the kubelet\'s probes on the pod\'s address')
  t.equal(container.command[0], BIN, 'the container command is the package\'s bin')
  const { key } = mountedConfig(t, pod, container.command)
  t.ok(key in configMap.data, `--config names the mounted key ${key}`)
})

t.test('ports and probes agree with what the CLI prints for this config', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.yaml')
  writeFileSync(file, configText)
  // The container's own arguments, with the mounted path replaced by the file here.
  const args = container.command.slice(1).map((arg: string) => arg.startsWith('/etc/') ? file : arg)
  const printed = await runCli([...args, '--print-config'])
  t.equal(printed.code, 0, 'the container\'s command line is valid', { stderr: printed.stderr })
  const config = JSON.parse(printed.stdout) as { listen: { port: number, wsPort: number }, http: { port: number, drainDelayMs: number }, data: string }
  const port = (name: string): number => container.ports.find((p: Doc) => p.name === name).containerPort
  t.equal(port('mqtt'), config.listen.port, 'mqtt port = listen.port')
  t.equal(port('mqtt-ws'), config.listen.wsPort, 'mqtt-ws port = listen.wsPort')
  t.equal(port('http'), config.http.port, 'http port = http.port')
  for (const probe of ['readinessProbe', 'livenessProbe']) {
    const get = container[probe].httpGet
    t.equal(get.path, '/health', `${probe} on /health`)
    t.equal(typeof get.port === 'number' ? get.port : port(get.port), config.http.port, `${probe} on the status server's port`)
  }
  const readiness = container.readinessProbe
  t.ok(readiness.periodSeconds * readiness.failureThreshold * 1000 < config.http.drainDelayMs,
    'readiness fails within http.drainDelayMs: the pod is out of the Service before it lets its terminals go')
  t.ok(pod.terminationGracePeriodSeconds * 1000 >= config.http.drainDelayMs + CLOSE_TIMEOUT_MS,
    `terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds} s) covers the drain delay and the CLI's own ${CLOSE_TIMEOUT_MS / 1000} s bound for SIGTERM`)

  // The kubelet stops a container with the image's STOPSIGNAL (SIGTERM unless set), the signal the
  // CLI stops gracefully on; a preStop hook would only add to the grace period the drain delay already takes.
  const dockerfile = readFileSync(new URL('../deploy/Dockerfile', import.meta.url), 'utf8')
  t.notMatch(dockerfile, /^STOPSIGNAL (?!SIGTERM)/m, 'the image stops on SIGTERM')
  t.match(dockerfile, new RegExp(`^ENTRYPOINT \\["${BIN}"\\]`, 'm'), 'the image runs the bin')
  t.equal(container.lifecycle?.preStop, undefined, 'no preStop hook: http.drainDelayMs does its job')

  const dataMount = container.volumeMounts.find((m: Doc) => m.mountPath === config.data)
  t.ok(dataMount !== undefined, `the data dir ${config.data} is a mounted volume`)
  const template = statefulSet.spec.volumeClaimTemplates.find((c: Doc) => c.metadata.name === dataMount.name)
  t.ok(template !== undefined, 'from the volumeClaimTemplates: one PersistentVolume per pod')
})

t.test('Services, PodDisruptionBudget and the pods agree', async (t) => {
  const labels = statefulSet.spec.template.metadata.labels as Record<string, string>
  const selects = (selector: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v)
  const headless = only('Service', statefulSet.spec.serviceName)
  t.equal(headless.spec.clusterIP, 'None', 'the StatefulSet\'s serviceName is headless')
  t.ok(selects(statefulSet.spec.selector.matchLabels), 'the StatefulSet selects its own pods')
  const portNames = new Set(container.ports.map((p: Doc) => p.name))
  for (const service of docs.filter((doc) => doc.kind === 'Service')) {
    t.ok(selects(service.spec.selector), `${service.metadata.name} selects the pods`)
    for (const p of service.spec.ports) t.ok(portNames.has(p.targetPort), `${service.metadata.name}: ${p.name} targets a container port`)
  }
  const pdb = only('PodDisruptionBudget')
  t.ok(selects(pdb.spec.selector.matchLabels), 'the PodDisruptionBudget covers the pods')
  t.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable === statefulSet.spec.replicas - 1, 'one node at a time')
})

t.test('the image and the manifests name the version this package is', async (t) => {
  const dockerfile = readFileSync(new URL('../deploy/Dockerfile', import.meta.url), 'utf8')
  t.match(dockerfile, new RegExp(`^ARG VERSION=${PKG.version.replaceAll('.', '\\.')}$`, 'm'), 'the Dockerfile installs this version')
  const images = readdirSync(DIR).flatMap((file) => [...readFileSync(join(DIR, file), 'utf8').matchAll(/image: (\S+)/g)].map((m) => m[1]))
  t.ok(images.length >= 2, 'the StatefulSet and the drain Job name an image')
  for (const image of images) t.equal(image, `${BIN}:${PKG.version}`, 'the manifests run the image the Dockerfile builds')
})

t.test('the drain Job mounts a node\'s volume and runs `drain` with a command line the CLI accepts', async (t) => {
  const spec = job.spec.template.spec
  const command = spec.containers[0].command as string[]
  t.same(command.slice(0, 2), [BIN, 'drain'])
  t.equal(spec.containers[0].image, container.image, 'the nodes\' image')
  t.not(spec.restartPolicy, 'Always', 'a Job ends')
  const dataPath = command[command.indexOf('--data') + 1]
  const dataMount = spec.containers[0].volumeMounts.find((m: Doc) => m.mountPath === dataPath)
  const claim = spec.volumes.find((v: Doc) => v.name === dataMount?.name)?.persistentVolumeClaim?.claimName as string
  const template = statefulSet.spec.volumeClaimTemplates[0].metadata.name
  t.match(claim, new RegExp(`^${template}-${statefulSet.metadata.name}-\\d+$`), `it mounts a pod's own volume (${claim})`)
  mountedConfig(t, spec, command)

  // The same command line against a data dir here that has no store: the CLI takes every
  // argument and the config (exit 2 would say otherwise), and stops at the missing store.
  const dir = tempDir(t)
  const file = join(dir, 'config.yaml')
  writeFileSync(file, configText)
  const data = join(dir, 'data')
  mkdirSync(data)
  const args = command.slice(1).map((arg) => arg.startsWith('/etc/') ? file : arg === dataPath ? data : arg)
  const ran = await runCli(args)
  t.equal(ran.code, 1, 'accepted, then stopped at the store')
  t.match(ran.stderr, `no pending store at ${join(data, 'pending')}`)
})
