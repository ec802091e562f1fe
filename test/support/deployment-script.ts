/**
 * One script of ordinary deployment code — what an Aedes deployment runs on
 * its own instance: listeners of Aedes' events, a `published` hook that stores
 * telemetry, server-side subscriptions made before and after the plugin came,
 * commands to devices with `aedes.publish`, a retained command for a device
 * that connects later. It runs on plain Aedes and on Aedes + tier, and what it
 * observes is compared (test/deployment.test.ts).
 */
import { Aedes, type AedesOptions, type Client, type PublishPacket } from 'aedes'
import type { MqttClient } from 'mqtt'
import type { Test } from 'tap'
import { dualBroker, type DualBrokerOptions } from '../../src/index.js'
import { listenTcp } from '../../src/listeners.js'
import { connectClient } from './client.js'
import { rawConnect } from './raw-terminal.js'

export interface Site {
  aedes: Aedes
  /** Where the devices connect: the deployment's own listener. */
  url: string
  /** Straight at Broker1: plain Aedes is its own Broker1. */
  broker1: string
  /** Attaches the plugin (nothing on plain Aedes). */
  attach: () => Promise<void>
}

/** The deployment's Aedes on a loopback listener, closed at teardown (after `beforeClose`). */
async function deployment (t: Test, options: AedesOptions, beforeClose: () => Promise<void>): Promise<{ aedes: Aedes, url: string }> {
  const aedes = await Aedes.createBroker(options)
  const listener = await listenTcp(aedes, '127.0.0.1', 0)
  t.teardown(async () => {
    await listener.close()
    await beforeClose()
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
  })
  return { aedes, url: `mqtt://127.0.0.1:${listener.address.port}` }
}

/** Plain Aedes: the deployment as it runs without the tier, its own Broker1. */
export async function plainSite (t: Test, options: AedesOptions = {}): Promise<Site> {
  const { aedes, url } = await deployment(t, options, async () => {})
  return { aedes, url, broker1: url, attach: async () => {} }
}

/** The same deployment with the tier attached in front of `broker1` and `broker2`. */
export async function tierSite (t: Test, broker1: string, broker2: string, options: AedesOptions = {}, plugin: Partial<DualBrokerOptions> = {}): Promise<Site> {
  let close = async (): Promise<void> => {}
  const { aedes, url } = await deployment(t, options, () => close())
  return {
    aedes,
    url,
    broker1,
    attach: async () => {
      const tier = await dualBroker(aedes, { broker1: { url: broker1 }, broker2: { url: broker2 }, ...plugin })
      close = () => tier.close()
    }
  }
}

/** What the deployment's code observed, as text, in order. */
export interface Observed {
  events: string[]
  publishEvents: string[]
  published: string[]
  /** `aedes.subscribe('telemetry/#')` made before the plugin was attached. */
  subscribedBefore: string[]
  /** `aedes.subscribe('telemetry/#')` made after, and unsubscribed at the end. */
  subscribedAfter: string[]
  /** `aedes.subscribe('telemetry/+')`, overlapping the two above: each handler still hears a message once. */
  subscribedPlus: string[]
  /** The callbacks of `aedes.publish`: "ok" or the error. */
  publishCallbacks: string[]
  /** What the device received (its commands). */
  device: string[]
  /** What a device that connected after the retained command was sent received. */
  lateDevice: string[]
}

/**
 * Publishes the script records in `publish` and `published`: those of its devices and its own
 * ($SYS/ is Aedes' own chatter; a client straight at Broker1 is a client of plain Aedes, never of a tier node).
 */
const recorded = (packet: PublishPacket, client: Client | null): boolean => /^(telemetry|cmd)\//.test(packet.topic) && client?.id !== 'straight-at-broker1'

const EVENTS = ['client', 'clientReady', 'clientDisconnect', 'subscribe', 'unsubscribe', 'ack', 'connackSent', 'keepaliveTimeout', 'clientError'] as const

function describe (event: string, args: unknown[]): string {
  const [first, second] = args as [unknown, Client | undefined]
  switch (event) {
    case 'subscribe': case 'unsubscribe':
      return `${event} ${(second as Client).id} ${JSON.stringify((first as Array<{ topic: string } | string>).map((s) => typeof s === 'string' ? s : `${s.topic}@${(s as { qos?: number }).qos ?? ''}`))}`
    case 'ack': {
      const packet = first as Partial<PublishPacket> | undefined
      return `ack ${(second as Client).id} ${packet === undefined ? 'no packet' : `${packet.cmd ?? 'packet'} ${packet.topic ?? ''}`}`
    }
    case 'clientError':
      return `clientError ${(first as Client).id}`
    case 'connackSent':
      return `connackSent ${(second as Client).id} code ${(first as { returnCode?: number }).returnCode ?? ''}`
    default:
      return `${event} ${(first as Client).id}`
  }
}

const text = (packet: PublishPacket, client: Client | null): string =>
  `${client?.id ?? 'app'} ${packet.topic} q${packet.qos} ${packet.retain ? 'retained ' : ''}${String(packet.payload)}`

/** Lines observed, and a wait for the next ones that needs no polling. */
class Log {
  readonly lines: string[] = []
  private readonly waiting = new Set<() => void>()

  push (line: string): void {
    this.lines.push(line)
    for (const wake of this.waiting) wake()
  }

  /** Resolves once `count` lines (matching `filter`) are here; rejects with what was seen after `timeoutMs`. */
  until (count: number, what: string, filter: (line: string) => boolean = () => true, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.lines.filter(filter).length < count) return
        clearTimeout(timer)
        this.waiting.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiting.delete(check)
        reject(new Error(`${what}: ${this.lines.filter(filter).length} of ${count} after ${timeoutMs} ms: ${JSON.stringify(this.lines)}`))
      }, timeoutMs)
      this.waiting.add(check)
      check()
    })
  }
}

function received (client: MqttClient, into: Log): void {
  client.on('message', (topic, payload, packet) => into.push(`${topic} q${packet.qos} ${packet.retain ? 'retained ' : ''}${String(payload)}`))
}

function publishApp (aedes: Aedes, packet: Partial<PublishPacket>, into: Log): Promise<void> {
  return new Promise((resolve) => {
    aedes.publish({ cmd: 'publish', dup: false, retain: false, qos: 0, ...packet } as PublishPacket, (error) => {
      into.push(error == null ? 'ok' : `error ${(error as Error & { code?: string }).code ?? error.message}`)
      resolve()
    })
  })
}

export async function deploymentScript (t: Test, site: Site): Promise<Observed> {
  const { aedes } = site
  const seen = {
    events: new Log(), publishEvents: new Log(), published: new Log(), subscribedBefore: new Log(), subscribedAfter: new Log(),
    subscribedPlus: new Log(), publishCallbacks: new Log(), device: new Log(), lateDevice: new Log()
  }
  const before = (packet: PublishPacket, done: () => void): void => { seen.subscribedBefore.push(text(packet, null)); done() }
  await new Promise<void>((resolve) => aedes.subscribe('telemetry/#', before, resolve))
  await site.attach()

  for (const event of EVENTS) {
    aedes.on(event as 'client', (...args: unknown[]) => {
      const line = describe(event, args)
      if (/ (dev|late)\d/.test(line)) seen.events.push(line)
    })
  }
  aedes.on('publish', (packet, client) => { if (recorded(packet, client)) seen.publishEvents.push(text(packet, client)) })
  aedes.published = (packet, client, done) => {
    if (recorded(packet, client)) seen.published.push(text(packet, client))
    done()
  }
  const after = (packet: PublishPacket, done: () => void): void => { seen.subscribedAfter.push(text(packet, null)); done() }
  await new Promise<void>((resolve) => aedes.subscribe('telemetry/#', after, resolve))
  const plus = (packet: PublishPacket, done: () => void): void => { seen.subscribedPlus.push(text(packet, null)); done() }
  await new Promise<void>((resolve) => aedes.subscribe('telemetry/+', plus, resolve))

  // A device: its telemetry at QoS 0, 1 and 2, in order.
  const device = await connectClient(t, site.url, { clientId: 'dev1', clean: true })
  received(device, seen.device)
  // Aedes emits clientReady after its persistence's steps: a SUBSCRIBE sent at once may come first or not.
  const ready = (id: string): Promise<void> => seen.events.until(1, `${id} ready`, (line) => line === `clientReady ${id}`)
  await ready('dev1')
  await device.subscribeAsync('cmd/dev1', { qos: 1 })
  for (const [i, qos] of ([0, 1, 2, 1, 0] as const).entries()) await device.publishAsync('telemetry/dev1', `t${i + 1}`, { qos })
  await seen.subscribedAfter.until(5, 'telemetry at the server-side subscription')
  await seen.subscribedBefore.until(5, 'telemetry at the subscription made before the plugin')
  await seen.published.until(5, 'telemetry in the published hook')

  // Commands to the device; a retained one for a device that is not there yet.
  for (let i = 1; i <= 5; i++) await publishApp(aedes, { topic: 'cmd/dev1', payload: Buffer.from(`c${i}`), qos: 1 }, seen.publishCallbacks)
  await publishApp(aedes, { topic: 'cmd/late1', payload: Buffer.from('retained command'), qos: 1, retain: true }, seen.publishCallbacks)
  await seen.device.until(5, 'commands at the device')
  await seen.events.until(5, 'the device\'s acks', (line) => line.startsWith('ack dev1'))
  // A persistent device: Aedes' `ack` event shows its messages.
  const keeper = await connectClient(t, site.url, { clientId: 'dev2', clean: false })
  received(keeper, seen.device)
  await ready('dev2')
  await keeper.subscribeAsync('cmd/dev2', { qos: 2 })
  await publishApp(aedes, { topic: 'cmd/dev2', payload: Buffer.from('k1'), qos: 1 }, seen.publishCallbacks)
  await publishApp(aedes, { topic: 'cmd/dev2', payload: Buffer.from('k2'), qos: 2 }, seen.publishCallbacks)
  await seen.device.until(7, 'commands at the persistent device')
  await seen.events.until(2, 'acks of the persistent device', (line) => line.startsWith('ack dev2'))
  await keeper.endAsync()
  const late = await connectClient(t, site.url, { clientId: 'late1', clean: true })
  received(late, seen.lateDevice)
  await ready('late1')
  await late.subscribeAsync('cmd/late1', { qos: 1 })
  await seen.lateDevice.until(1, 'the retained command at the late device')

  // Telemetry published straight at Broker1, by a client the deployment never saw.
  const direct = await connectClient(t, site.broker1, { clientId: 'straight-at-broker1', clean: true })
  for (let i = 1; i <= 5; i++) await direct.publishAsync('telemetry/elsewhere', `s${i}`, { qos: 1 })
  await seen.subscribedAfter.until(10, 'telemetry of Broker1\'s own clients at the server-side subscription')
  await seen.subscribedPlus.until(10, 'the same at the overlapping subscription')

  // The deployment unsubscribes: the next telemetry reaches only the subscription that stays.
  await new Promise<void>((resolve) => aedes.unsubscribe('telemetry/#', after, () => resolve()))
  await device.publishAsync('telemetry/dev1', 'after unsubscribe', { qos: 1 })
  await seen.subscribedBefore.until(11, 'telemetry at the subscription that stays')
  await seen.subscribedPlus.until(11, 'and at the overlapping one')
  await direct.endAsync()
  await late.endAsync()
  await device.endAsync()
  await seen.events.until(3, 'clientDisconnect of every device', (line) => line.startsWith('clientDisconnect'))

  // A device that goes silent: Aedes' keepalive ends it (1.5 × 1 s).
  const silent = await rawConnect(t, site.url, { clientId: 'dev3', keepalive: 1 })
  await seen.events.until(1, 'the silent device\'s disconnect', (line) => line === 'clientDisconnect dev3', 5_000)
  await silent.closed
  aedes.unsubscribe('telemetry/#', before, () => {})
  aedes.unsubscribe('telemetry/+', plus, () => {})
  return Object.fromEntries(Object.entries(seen).map(([key, log]) => [key, log.lines])) as unknown as Observed
}
