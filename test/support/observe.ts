/** Waiting on brokers and clients by their events (no sleeps), plus a terminal's inbox. */
import type { EventEmitter } from 'node:events'
import type { Aedes, Client, Subscription } from 'aedes'
import type { MqttClient } from 'mqtt'
import type { Test } from 'tap'
import type { AedesBroker } from './aedes-broker.js'
import { connectClient } from './client.js'
import { topicMatches } from './recorder.js'

type Listener = (...args: any[]) => void

/** Resolves with the arguments of the next `event` that `match` accepts; rejects after `timeoutMs`. */
export function nextEvent (emitter: EventEmitter | Aedes | MqttClient, event: string, match: (...args: any[]) => boolean = () => true, timeoutMs = 5000): Promise<unknown[]> {
  const source = emitter as unknown as EventEmitter
  return new Promise((resolve, reject) => {
    const listener: Listener = (...args) => {
      if (!match(...args)) return
      clearTimeout(timer)
      source.off(event, listener)
      resolve(args)
    }
    const timer = setTimeout(() => {
      source.off(event, listener)
      reject(new Error(`no matching '${event}' event within ${timeoutMs} ms`))
    }, timeoutMs)
    source.on(event, listener)
  })
}

/** Broker-side events of one client id: SUBSCRIBE of `topic`, UNSUBSCRIBE of `topic`, PINGREQ. */
export function subscribedAt (aedes: Aedes, clientId: string, topic: string): Promise<unknown[]> {
  return nextEvent(aedes, 'subscribe', (subs: Subscription[], client: Client) => client.id === clientId && subs.some((s) => s.topic === topic))
}
export function unsubscribedAt (aedes: Aedes, clientId: string, topic: string): Promise<unknown[]> {
  return nextEvent(aedes, 'unsubscribe', (topics: string[], client: Client) => client.id === clientId && topics.includes(topic))
}
export function pingedAt (aedes: Aedes, clientId: string): Promise<unknown[]> {
  return nextEvent(aedes, 'ping', (_packet: unknown, client: Client) => client.id === clientId)
}

/** Every 'subscribe' event of `clientId` at this instance from now on, as topic lists. */
export function subscribeLog (aedes: Aedes, clientId: string): string[][] {
  const log: string[][] = []
  aedes.on('subscribe', (subs, client) => { if (client.id === clientId) log.push(subs.map((s) => s.topic)) })
  return log
}

/** How many connections with `clientId` the broker holds right now. */
export function holding (broker: AedesBroker, clientId: string): number {
  return broker.clientIds().filter((id) => id === clientId).length
}

/** Resolves once `ready()` holds, re-checked on the broker's connect/disconnect events. */
export function untilBroker (broker: AedesBroker, ready: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  if (ready()) return Promise.resolve()
  const aedes = broker.aedes
  return new Promise((resolve, reject) => {
    const check = (): void => {
      // 'clientDisconnect' listeners run in registration order: the helper's own set is updated first.
      if (!ready()) return
      done()
      resolve()
    }
    const done = (): void => {
      clearTimeout(timer)
      aedes.off('clientDisconnect', check)
      aedes.off('client', check)
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`${what}: not within ${timeoutMs} ms (holding ${broker.clientIds().join(', ')})`))
    }, timeoutMs)
    aedes.on('clientDisconnect', check)
    aedes.on('client', check)
  })
}

/**
 * For checking that something does NOT happen (no event exists for that):
 * polls `holds()` every 10 ms for `ms` and rejects as soon as it fails.
 */
export async function stillHolds (holds: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (!holds()) throw new Error(`${what}: stopped holding`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  if (!holds()) throw new Error(`${what}: stopped holding`)
}

/** Resolves with what `promise` resolves to, or rejects once `ms` passed; leaves no timer behind. */
export async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** True if `promise` settles within `ms`, false if not: for checking that something does NOT happen. */
export async function settlesWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  return within(promise.then(() => true, () => true), ms, '').catch(() => false)
}

export interface Seen { topic: string, payload: string }

export interface Inbox {
  readonly messages: Seen[]
  /** The first message (already seen or future) on a topic matching `filter`. */
  waitForTopic: (filter: string, timeoutMs?: number) => Promise<Seen>
  count: (filter: string) => number
}

/** Records every message an MQTT client receives from now on. */
export function inbox (client: MqttClient): Inbox {
  const messages: Seen[] = []
  client.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }))
  const find = (filter: string): Seen | undefined => messages.find((m) => topicMatches(filter, m.topic))
  return {
    messages,
    count: (filter) => messages.filter((m) => topicMatches(filter, m.topic)).length,
    async waitForTopic (filter, timeoutMs = 5000) {
      const already = find(filter)
      if (already !== undefined) return already
      await nextEvent(client, 'message', (topic: string) => topicMatches(filter, topic), timeoutMs)
      return find(filter)!
    }
  }
}

/** Publishes `topics` in this order, QoS 1, from one fresh client connected directly at `url`. */
export async function publishAt (t: Test, url: string, ...topics: string[]): Promise<void> {
  const publisher = await connectClient(t, url)
  for (const topic of topics) await publisher.publishAsync(topic, `at ${url}`, { qos: 1 })
  await publisher.endAsync()
}

/** Granted codes of a SUBACK, whether mqtt.js reports it as success or as a failure. */
export function subackCodes (client: MqttClient, topic: string, qos: 0 | 1 | 2): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(topic, { qos }, (error, granted, packet) => {
      if (packet !== undefined) resolve((packet.granted as Array<number | { qos: number }>).map((g) => typeof g === 'number' ? g : g.qos))
      else if (error !== null) reject(error)
      else resolve((granted ?? []).map((g) => g.qos))
    })
  })
}
