/**
 * The outbox on its own (src/routing/outbox.ts): a terminal's publishes until
 * they are safe. Its links are small recording objects and their acks are
 * reported by calling `outbox.published(message, link)`, as an UpstreamLink
 * does: the outbox is a pure seam, real brokers are the integration tests'
 * (test/failover.test.ts, test/policy-modes.test.ts).
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { PolicyMode, PolicyRule } from '../src/config/schema.js'
import type { DualBrokerEvents } from '../src/events.js'
import { StoreSink } from '../src/failover/store-sink.js'
import { silentLogger } from '../src/logger.js'
import type { Qos } from '../src/mqtt/protocol.js'
import { OutgoingPublish, Outbox, type PublishStore } from '../src/routing/outbox.js'
import { type Policy, PolicyTable, RoutingTable } from '../src/routing/routing-table.js'
import { newCounters, type TierCounters } from '../src/state.js'
import { LevelPendingStore, StoreClosedError } from '../src/store/index.js'
import type { UpstreamLink } from '../src/upstream/upstream-link.js'

/** What the outbox uses of an UpstreamLink: the compiler checks that FakeLink has it with the same types. */
type LinkSeam = Pick<UpstreamLink, 'online' | 'index' | 'publish'> & { readonly endpoint: Pick<UpstreamLink['endpoint'], 'name'> }

/** One of the terminal's upstream sessions, reduced to what the outbox sees; it records what it was given. */
class FakeLink implements LinkSeam {
  online = true
  readonly sent: OutgoingPublish[] = []
  readonly endpoint
  constructor (readonly index: 0 | 1) {
    this.endpoint = { name: index === 0 ? 'broker1' as const : 'broker2' as const }
  }

  publish (message: OutgoingPublish): void {
    this.sent.push(message)
  }

  get topics (): string[] {
    return this.sent.map((message) => message.topic)
  }
}

// The outbox reads only the LinkSeam part of an UpstreamLink; the rest (a socket to a broker) is not this seam's.
const asLink = (fake: FakeLink): UpstreamLink => fake as unknown as UpstreamLink

/**
 * A PublishStore that the test commits or fails by hand, for the outbox's own
 * logic (when a stored publish is acknowledged). The real StoreSink over a
 * real LevelPendingStore is the last tests' store.
 */
class HandStore implements PublishStore {
  readonly appends: Array<{ topic: string, policy: Policy, anyBroker: boolean, commit: () => void, fail: (error: Error) => void }> = []

  append (message: OutgoingPublish, policy: Policy, anyBroker: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.appends.push({ topic: message.topic, policy, anyBroker, commit: () => resolve(undefined), fail: reject })
    })
  }
}

/** The store's promise callbacks (microtasks) have all run by the next turn of the event loop: no timer involved. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

interface RigOptions {
  rules?: PolicyRule[]
  defaultPolicy?: PolicyMode
  store?: PublishStore
  counters?: TierCounters
  resendWindowMs?: number
}

function rig (options: RigOptions = {}) {
  const table = new RoutingTable(new PolicyTable(options.rules ?? [], options.defaultPolicy ?? 'both'), options.store !== undefined)
  const counters = options.counters ?? newCounters()
  const events = new EventEmitter<DualBrokerEvents>()
  /** Every event name the outbox emitted, listened to or not. */
  const emitted: string[] = []
  const emit = events.emit.bind(events)
  events.emit = ((name: keyof DualBrokerEvents, ...args: [never]) => {
    emitted.push(name)
    return emit(name, ...args)
  }) as typeof events.emit
  const outbox = new Outbox({ table, store: options.store, counters, events, health: { resendWindowMs: options.resendWindowMs ?? 60_000 } })
  const broker1 = new FakeLink(0)
  const broker2 = new FakeLink(1)
  outbox.routeTo([asLink(broker1), asLink(broker2)])
  /** The terminal's acknowledgements in the order they came: the topic, with the error if there was one. */
  const acks: string[] = []
  const errors: Error[] = []
  const send = (topic: string, qos: Qos = 1, retain = false): OutgoingPublish => {
    const message = new OutgoingPublish({ topic, payload: Buffer.from(`payload of ${topic}`), qos, retain }, 'terminal-1', `id.${topic}`, (error) => {
      acks.push(error == null ? topic : `${topic}: ${error.message}`)
      if (error != null) errors.push(error)
    })
    outbox.send(message)
    return message
  }
  /** `link`'s broker acked `message` (QoS 0: the link wrote it). */
  const ack = (message: OutgoingPublish, link: FakeLink): void => outbox.published(message, asLink(link))
  /** The link lost its connection, and reports it as an UpstreamLink does. */
  const lose = (link: FakeLink): void => {
    link.online = false
    outbox.reroute(asLink(link))
  }
  return { table, counters, events, emitted, outbox, broker1, broker2, acks, errors, send, ack, lose }
}

t.test('order is kept across wait → flush, also for a publish that comes once the link is back but before the flush', async (t) => {
  const { broker1, broker2, outbox, send, ack, acks } = rig()
  broker1.online = false // the terminal's Broker1 session is reconnecting
  const waiting = [send('o/a'), send('o/b', 2), send('o/c')]
  outbox.flush()
  t.same(broker1.topics, [], 'nothing is sent while no session is online, even on a flush')
  t.equal(outbox.size, 3)
  t.same(acks, [], 'unacknowledged while they wait')
  broker1.online = true
  waiting.push(send('o/d'))
  t.same(broker1.topics, [], 'a newer publish does not overtake the waiting ones')
  outbox.flush()
  t.same(broker1.topics, ['o/a', 'o/b', 'o/c', 'o/d'], 'sent in the order accepted')
  t.same(broker1.sent.map((message) => message.qos), [1, 2, 1, 1])
  t.same(broker2.topics, [])
  t.equal(outbox.size, 4, 'in flight until acked')
  t.same(acks, [])
  for (const message of waiting) ack(message, broker1)
  t.same(acks, ['o/a', 'o/b', 'o/c', 'o/d'])
  t.equal(outbox.size, 0)
  const next = send('o/e')
  t.same(broker1.topics.at(-1), 'o/e', 'with nothing waiting, a publish goes out at once')
  ack(next, broker1)
  t.same(acks.at(-1), 'o/e')
})

t.test('QoS 0 that would wait is dropped, counted and acknowledged at once; live QoS 0 is acked once written', async (t) => {
  const { table, broker1, broker2, outbox, send, ack, acks, counters } = rig()
  broker1.online = false
  send('z/0', 0)
  t.same(acks, ['z/0'], 'acknowledged at once: Aedes reads the terminal on')
  t.equal(counters.dropped.qos0, 1)
  t.equal(outbox.size, 0, 'not held')
  broker1.online = true
  outbox.flush()
  t.same(broker1.topics, [], 'and not sent later')

  table.mode = 'failover'
  broker2.online = false // default both, no store: nowhere to go
  send('z/1', 0)
  t.equal(counters.dropped.qos0, 2, 'in failover with no broker and no store too')

  table.mode = 'normal'
  const live = send('z/2', 0)
  t.same(broker1.topics, ['z/2'])
  t.equal(outbox.size, 0, 'QoS 0 is never in flight')
  t.same(acks, ['z/0', 'z/1'], 'not acknowledged before the link wrote it')
  ack(live, broker1)
  t.same(acks, ['z/0', 'z/1', 'z/2'])
  t.same(counters.forwarded.broker1, [1, 0, 0])
  t.equal(counters.dropped.qos0, 2)
})

t.test('a drop policy discards while Broker1 is down: counted, a dropped event, acknowledged, sent nowhere', async (t) => {
  const store = new HandStore()
  const { table, broker1, broker2, outbox, send, events, emitted, counters, acks } = rig({ rules: [{ topic: 'noise/#', mode: 'drop' }], store })
  const dropped: unknown[] = []
  events.on('dropped', (event) => dropped.push(event))
  send('noise/live')
  t.same(broker1.topics, ['noise/live'], 'in normal mode the policy does not apply')
  table.mode = 'failover'
  broker1.online = false
  send('noise/a')
  send('noise/b', 2)
  t.equal(counters.dropped.policy, 2)
  t.same(dropped, [{ reason: 'policy', count: 1, topic: 'noise/a' }, { reason: 'policy', count: 1, topic: 'noise/b' }])
  t.same(acks, ['noise/a', 'noise/b'], 'acknowledged: the policy disposed of them')
  t.same(broker1.topics, ['noise/live'])
  t.same(broker2.topics, [])
  t.equal(store.appends.length, 0, 'not stored')
  t.equal(outbox.size, 1, 'only noise/live, still in flight')
  send('data/x')
  t.same(broker2.topics, ['data/x'], 'other topics follow the default policy')
  t.same(emitted.filter((name) => name === 'dropped').length, 2)
})

t.test('maxQos caps the QoS a publish goes out with and never raises it', async (t) => {
  const { broker1, outbox, send, ack, acks, counters } = rig({
    rules: [{ topic: 'cap/1', mode: 'both', maxQos: 1 }, { topic: 'cap/0', mode: 'both', maxQos: 0 }]
  })
  const two = send('cap/1', 2)
  t.equal(broker1.sent[0]!.qos, 1, 'QoS 2 goes out at 1')
  ack(two, broker1)
  t.same(counters.forwarded.broker1, [0, 1, 0], 'counted at the QoS it went out with')
  const one = send('cap/0', 1)
  t.equal(broker1.sent[1]!.qos, 0, 'QoS 1 goes out at 0')
  t.equal(outbox.size, 0, 'so it is not in flight')
  t.same(acks, ['cap/1'])
  ack(one, broker1)
  t.same(acks, ['cap/1', 'cap/0'], 'acknowledged once written')
  t.same(counters.forwarded.broker1, [1, 1, 0])
  send('cap/1', 0)
  send('free', 2)
  t.same(broker1.sent.slice(2).map((message) => message.qos), [0, 2], 'QoS 0 stays 0; a topic without maxQos keeps its QoS')
  broker1.online = false
  send('cap/0', 2)
  t.equal(counters.dropped.qos0, 1, 'capped to 0, it is dropped instead of waiting')
  t.equal(outbox.size, 1, 'only free, in flight')
})

t.test('both: the terminal is acked only once the store committed and Broker2 acked, in either order', async (t) => {
  const store = new HandStore()
  const { table, broker1, broker2, outbox, send, ack, acks, lose } = rig({ store })
  table.mode = 'failover'
  broker1.online = false
  const first = send('b/1')
  t.same(broker2.topics, ['b/1'], 'sent live to Broker2')
  t.same(store.appends.map(({ topic, anyBroker, policy }) => ({ topic, anyBroker, policy })), [{ topic: 'b/1', anyBroker: false, policy: { mode: 'both' } }], 'and stored for Broker1')
  t.same(broker1.topics, [])
  ack(first, broker2)
  await settled()
  t.same(acks, [], 'Broker2 acked, the store has not committed')
  store.appends[0]!.commit()
  await settled()
  t.same(acks, ['b/1'])

  const second = send('b/2')
  store.appends[1]!.commit()
  await settled()
  t.same(acks, ['b/1'], 'the store committed, Broker2 has not acked')
  ack(second, broker2)
  t.same(acks, ['b/1', 'b/2'])

  const third = send('b/3')
  store.appends[2]!.fail(new Error('disk full'))
  await settled()
  t.same(acks, ['b/1', 'b/2', 'b/3: disk full'], 'a failed commit is acknowledged with its error at once')
  ack(third, broker2)
  t.same(acks, ['b/1', 'b/2', 'b/3: disk full'], 'and Broker2\'s ack does not acknowledge it again')

  // Lost Broker2 with a `both` in flight: the store holds it for Broker1, nothing is sent again.
  send('b/4')
  const fifth = send('b/5')
  store.appends[4]!.commit()
  await settled()
  t.same(acks.length, 3, 'b/4 and b/5 wait for Broker2')
  lose(broker2)
  t.same(acks, ['b/1', 'b/2', 'b/3: disk full', 'b/5'], 'b/5 was committed: acknowledged as Broker2 is lost')
  t.same(broker2.topics, ['b/1', 'b/2', 'b/3', 'b/4', 'b/5'], 'nothing sent again to Broker2')
  t.same(broker1.topics, [], 'nor to Broker1 (it gets the store\'s copy on replay)')
  t.equal(store.appends.length, 5, 'nor stored twice')
  t.equal(outbox.size, 0, 'no longer in flight')
  store.appends[3]!.commit()
  await settled()
  t.same(acks.at(-1), 'b/4', 'b/4 is acknowledged by its commit alone')
  ack(fifth, broker2) // a late ack from the lost session
  t.equal(acks.length, 5, 'no second acknowledgement')
  t.equal(broker2.sent.length, 5, 'stored messages are not in the resend window: the store has them')
})

t.test('both without a store is live to Broker2 alone; store routes are acked on commit, with their policy', async (t) => {
  const storeless = rig()
  storeless.table.mode = 'failover'
  const message = storeless.send('n/1')
  t.same(storeless.broker2.topics, ['n/1'])
  storeless.ack(message, storeless.broker2)
  t.same(storeless.acks, ['n/1'], 'acked by Broker2 alone')

  const store = new HandStore()
  const { table, broker1, broker2, outbox, send, acks, errors } = rig({
    store, rules: [{ topic: 'q/#', mode: 'queue', ttl: 30_000 }, { topic: 'f/#', mode: 'failover' }]
  })
  table.mode = 'failover'
  broker1.online = false
  broker2.online = false
  send('q/1')
  send('f/1')
  send('b/1', 2)
  t.same(store.appends.map(({ topic, anyBroker, policy }) => ({ topic, anyBroker, policy })), [
    { topic: 'q/1', anyBroker: false, policy: { mode: 'queue', ttl: 30_000 } },
    { topic: 'f/1', anyBroker: true, policy: { mode: 'failover' } },
    { topic: 'b/1', anyBroker: false, policy: { mode: 'both' } }
  ], 'queue → Broker1, failover → the first broker back, both → Broker1')
  t.equal(outbox.size, 0, 'a stored publish neither waits nor is in flight')
  t.same(acks, [], 'unacknowledged until committed')
  store.appends[1]!.commit()
  await settled()
  t.same(acks, ['f/1'], 'each is acknowledged when its own commit is done')
  store.appends[0]!.commit()
  store.appends[2]!.fail(new Error('store full'))
  await settled()
  t.same(acks, ['f/1', 'q/1', 'b/1: store full'])
  t.equal(errors[0]!.message, 'store full', 'the store\'s error reaches the terminal\'s acknowledgement')
  t.same([broker1.topics, broker2.topics], [[], []])

  table.mode = 'replaying'
  broker1.online = true
  send('f/2')
  t.same(store.appends.at(-1)!.anyBroker, false, 'replaying: behind the backlog, for Broker1, whatever the policy')
  t.same(broker1.topics, [])
})

t.test('a lost link: what it had in flight is routed again, in order, ahead of what waits', async (t) => {
  const { table, broker1, broker2, outbox, send, ack, acks, lose } = rig()
  const inflight = ['r/a', 'r/b', 'r/c'].map((topic) => send(topic))
  broker1.online = false // its connection is gone; the link reports it just after
  const later = send('r/d')
  t.equal(outbox.size, 4)
  lose(broker1)
  t.same(broker1.topics, ['r/a', 'r/b', 'r/c'], 'nothing sent again on the lost link')
  t.equal(outbox.size, 4, 'all four wait: the Broker1 session is down, the tier still in normal mode')
  table.mode = 'failover'
  outbox.flush()
  t.same(broker2.topics, ['r/a', 'r/b', 'r/c', 'r/d'], 'the moved ones first, in order, then the waiting one')
  t.same(broker2.sent.slice(0, 3), inflight, 'the same publishes, not copies')
  t.same(acks, [])
  for (const message of [...inflight, later]) ack(message, broker2)
  t.same(acks, ['r/a', 'r/b', 'r/c', 'r/d'], 'each acknowledged once')
  t.equal(outbox.size, 0)
})

t.test('a late ack from the link a publish was moved away from is ignored', async (t) => {
  const { table, broker1, broker2, outbox, send, ack, acks, lose, counters } = rig()
  const moved = send('l/a')
  lose(broker1)
  table.mode = 'failover'
  outbox.flush()
  t.same(broker2.topics, ['l/a'])
  ack(moved, broker1)
  t.same(acks, [], 'Broker1\'s ack came after the publish had moved on: not the terminal\'s ack')
  t.equal(outbox.size, 1, 'still in flight on Broker2')
  t.same(counters.forwarded.broker1, [0, 0, 0], 'not counted as forwarded by Broker1')
  t.equal(outbox.overdue(moved.sentAt + 1e9, 1), asLink(broker2), 'it waits for Broker2\'s ack')
  ack(moved, broker2)
  t.same(acks, ['l/a'])
  t.same(counters.forwarded.broker2, [0, 1, 0])
  ack(moved, broker2)
  t.same(acks, ['l/a'], 'a repeated ack acknowledges nothing more')
  t.same(counters.forwarded.broker2, [0, 1, 0])
})

t.test('the resend window: what the lost broker acked recently is sent again once, already acknowledged', async (t) => {
  const { table, broker1, broker2, outbox, send, ack, acks, lose, counters } = rig({ resendWindowMs: 60_000 })
  const retained = send('w/a', 1, true)
  const two = send('w/b', 2)
  const zero = send('w/c', 0)
  for (const message of [retained, two, zero]) ack(message, broker1)
  const inflight = send('w/d')
  t.same(acks, ['w/a', 'w/b', 'w/c'])
  lose(broker1)
  t.equal(outbox.size, 3, 'the two acked ones and the one in flight wait for a route')
  table.mode = 'failover'
  outbox.flush()
  t.same(broker2.topics, ['w/a', 'w/b', 'w/d'], 'what Broker1 acked first, then what it had in flight; QoS 0 never')
  const [againA, againB] = broker2.sent as [OutgoingPublish, OutgoingPublish]
  t.not(againA, retained, 'sent again as a publish of its own')
  const content = ({ topic, payload, qos, retain, id, clientId }: OutgoingPublish): unknown => ({ topic, payload: payload.toString(), qos, retain, id, clientId })
  t.same([content(againA), content(againB)], [content(retained), content(two)], 'topic, payload, QoS, retain, id and client id kept')
  t.ok(againA.acknowledged && againB.acknowledged, 'marked as already acknowledged to the terminal')
  for (const message of [...broker2.sent]) ack(message, broker2)
  t.same(acks, ['w/a', 'w/b', 'w/c', 'w/d'], 'the terminal is acknowledged once per publish')
  t.equal(outbox.size, 0)
  t.same(counters.forwarded.broker2, [0, 2, 1], 'Broker2 acked w/a and w/d at QoS 1, w/b at 2')
  broker1.online = true
  lose(broker1)
  t.equal(broker2.sent.length, 3, 'Broker1 lost again: nothing of it is sent a second time')
})

t.test('resendWindowMs 0: nothing acked is sent again, only what was in flight', async (t) => {
  const { table, broker1, broker2, outbox, send, ack, acks, lose } = rig({ resendWindowMs: 0 })
  ack(send('w/a'), broker1)
  ack(send('w/b', 2), broker1)
  send('w/c')
  lose(broker1)
  table.mode = 'failover'
  outbox.flush()
  t.same(broker2.topics, ['w/c'])
  t.same(acks, ['w/a', 'w/b'])
})

t.test('overdue names the link of the oldest live publish once it waited longer than the timeout', async (t) => {
  const { table, broker1, broker2, outbox, send, ack } = rig()
  t.equal(outbox.overdue(performance.now() + 1e9, 1), undefined, 'nothing in flight')
  const first = send('d/a')
  send('d/0', 0) // QoS 0 is never waited for
  t.equal(outbox.overdue(first.sentAt + 999, 1000), undefined, 'within the timeout')
  t.equal(outbox.overdue(first.sentAt + 1001, 1000), asLink(broker1), 'past it: Broker1')
  table.mode = 'failover'
  const second = send('d/b')
  t.equal(outbox.overdue(second.sentAt + 1e9, 1000), asLink(broker1), 'the oldest one decides')
  ack(first, broker1)
  t.equal(outbox.overdue(second.sentAt + 1001, 1000), asLink(broker2), 'then Broker2\'s')
  t.equal(outbox.overdue(second.sentAt + 999, 1000), undefined)
  ack(second, broker2)
  t.equal(outbox.overdue(performance.now() + 1e9, 1), undefined)
})

t.test('whenEmpty resolves at once when nothing is in flight or waiting, else when the last one is acked', async (t) => {
  const { broker1, outbox, send, ack } = rig()
  let resolved = false
  void outbox.whenEmpty().then(() => { resolved = true })
  await settled()
  t.ok(resolved, 'empty: at once')
  const first = send('e/a')
  const second = send('e/b')
  send('e/0', 0) // written, never waited for
  resolved = false
  const empty = outbox.whenEmpty().then(() => { resolved = true })
  ack(first, broker1)
  await settled()
  t.notOk(resolved, 'one is still in flight')
  ack(second, broker1)
  await empty
  t.ok(resolved)

  broker1.online = false
  send('e/c')
  resolved = false
  const waited = outbox.whenEmpty().then(() => { resolved = true })
  await settled()
  t.notOk(resolved, 'one waits')
  broker1.online = true
  outbox.flush()
  await settled()
  t.notOk(resolved, 'sent, in flight')
  ack(broker1.sent.at(-1)!, broker1)
  await waited
  t.ok(resolved)

  const store = new HandStore()
  const both = rig({ store })
  both.table.mode = 'failover'
  both.send('e/both')
  resolved = false
  const lost = both.outbox.whenEmpty().then(() => { resolved = true })
  await settled()
  t.notOk(resolved, 'a `both` in flight on Broker2')
  both.lose(both.broker2)
  await lost
  t.ok(resolved, 'Broker2 lost: the store has it, nothing is left in flight')
})

t.test('clear: what was in flight or waiting is forgotten, and so is the resend window', async (t) => {
  const { table, broker1, broker2, outbox, send, ack, acks, lose } = rig()
  ack(send('c/acked'), broker1)
  send('c/inflight')
  broker1.online = false
  send('c/waiting')
  const empty = outbox.whenEmpty()
  outbox.clear()
  await empty // a stopping node is not held up by a terminal that is gone
  t.equal(outbox.size, 0)
  broker1.online = true
  outbox.flush()
  t.same(broker1.topics, ['c/acked', 'c/inflight'], 'nothing that waited is sent')
  lose(broker1)
  table.mode = 'failover'
  outbox.flush()
  t.same(broker2.topics, [], 'nothing in flight or recently acked is sent again')
  t.same(acks, ['c/acked'])
})

t.test('publish-acked is emitted with the ack time only while someone listens; forwarded is counted per broker and QoS', async (t) => {
  const { table, broker1, broker2, send, ack, emitted, events, counters } = rig()
  ack(send('m/a'), broker1)
  t.notOk(emitted.includes('publish-acked'), 'nobody listens: not emitted')
  const seen: Array<DualBrokerEvents['publish-acked'][0]> = []
  const listener = (event: DualBrokerEvents['publish-acked'][0]): void => { seen.push(event) }
  events.on('publish-acked', listener)
  ack(send('m/b', 2), broker1)
  table.mode = 'failover'
  ack(send('m/c'), broker2)
  ack(send('m/0', 0), broker2)
  t.same(seen.map(({ broker, qos }) => ({ broker, qos })), [{ broker: 'broker1', qos: 2 }, { broker: 'broker2', qos: 1 }], 'QoS 1/2 acks; a written QoS 0 is no ack')
  t.ok(seen.every(({ seconds }) => seconds >= 0 && seconds < 5), 'seconds from send to ack')
  events.off('publish-acked', listener)
  table.mode = 'normal'
  ack(send('m/d'), broker1)
  t.equal(emitted.filter((name) => name === 'publish-acked').length, 2, 'not emitted again once nobody listens')
  t.same(counters.forwarded, { broker1: [0, 2, 1], broker2: [1, 1, 0] })
})

function tempDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-store-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The tier's own store port over a real LevelDB, closed at teardown (before its folder is removed). */
async function openSink (t: Test, counters: TierCounters): Promise<StoreSink> {
  const store = new LevelPendingStore({ path: tempDir(t), fsync: 'batch', maxMessages: 1e6, maxBytes: 2 ** 30, overflow: 'reject-new' })
  await store.open()
  t.teardown(() => store.close())
  return new StoreSink(store, counters, silentLogger)
}

t.test('through the real StoreSink into LevelDB: acked once committed, with the policy\'s ttl, anyBroker and the id', async (t) => {
  const counters = newCounters()
  const sink = await openSink(t, counters)
  const { table, broker1, broker2, send, ack, acks, errors } = rig({
    store: sink, counters, rules: [{ topic: 'keep/#', mode: 'queue', ttl: 60_000, maxQos: 1 }, { topic: 'any/#', mode: 'failover' }]
  })
  table.mode = 'failover'
  broker1.online = false
  broker2.online = false
  const before = Date.now()
  send('keep/a', 2)
  send('any/b', 2, true)
  send('both/c')
  t.equal(sink.appending, 3)
  t.same(acks, [], 'not acknowledged before the commit')
  await sink.whenQuiet()
  await settled()
  t.same(acks, ['keep/a', 'any/b', 'both/c'])
  t.equal(counters.stored, 3)
  const stored = await sink.store.read()
  t.same(stored.map(({ topic, payload, qos, retain, clientId, id, anyBroker }) => ({ topic, payload: payload.toString(), qos, retain, clientId, id, anyBroker })), [
    { topic: 'keep/a', payload: 'payload of keep/a', qos: 1, retain: false, clientId: 'terminal-1', id: 'id.keep/a', anyBroker: undefined },
    { topic: 'any/b', payload: 'payload of any/b', qos: 2, retain: true, clientId: 'terminal-1', id: 'id.any/b', anyBroker: true },
    { topic: 'both/c', payload: 'payload of both/c', qos: 1, retain: false, clientId: 'terminal-1', id: 'id.both/c', anyBroker: undefined }
  ], 'in order, capped to the policy\'s maxQos')
  const [keep, any] = stored
  t.ok(keep!.acceptedAt >= before && keep!.acceptedAt <= Date.now())
  t.equal(keep!.expiresAt, keep!.acceptedAt + 60_000, 'expires ttl after it was accepted')
  t.notOk('expiresAt' in any!, 'no ttl, no expiry')

  broker2.online = true
  const both = send('both/d')
  t.same(broker2.topics, ['both/d'])
  await sink.whenQuiet()
  await settled()
  t.equal(sink.store.count, 4, 'committed')
  t.same(acks.at(-1), 'both/c', 'but Broker2 has not acked: not acknowledged')
  ack(both, broker2)
  t.same(acks.at(-1), 'both/d')

  await sink.store.close()
  broker2.online = false
  send('keep/e')
  await sink.whenQuiet()
  await settled()
  t.same(acks.length, 5)
  t.type(errors[0], StoreClosedError, 'a closed store: acknowledged with the store\'s error')
  t.equal(sink.error, errors[0]!.message, 'and the sink keeps it for tier.state')
  t.equal(counters.stored, 4)
})

t.test('QoS 0 is never held, also when a QoS 1 publish is already waiting (README "Per-topic policy")', async (t) => {
  const { broker1, outbox, send, acks, counters } = rig()
  broker1.online = false
  send('h/1', 1)
  send('h/0', 0)
  t.same(acks, ['h/0'], 'the QoS 0 is acknowledged at once (Aedes reads the terminal on)')
  t.equal(counters.dropped.qos0, 1, 'dropped and counted: it had nowhere to go')
  t.equal(outbox.size, 1, 'only the QoS 1 waits')
})

t.test('losing one link keeps what the other link acked in the resend window', async (t) => {
  const { table, broker1, outbox, send, ack, lose, broker2 } = rig({ resendWindowMs: 60_000 })
  table.mode = 'failover' // Broker1 down; the terminal's Broker1 session is back but flapping
  ack(send('k/1'), broker2)
  lose(broker1) // the flapping Broker1 session drops again
  lose(broker2) // Broker2 is SIGKILLed right after acking k/1
  t.equal(outbox.size, 1, 'k/1, acked by Broker2 within the window, waits to be sent again')
  broker1.online = true
  table.mode = 'normal'
  outbox.flush()
  t.same(broker1.topics, ['k/1'], 'and is sent again once a broker is back')
})

t.test('whenEmpty serves every waiter', async (t) => {
  const { outbox, send, ack, broker1 } = rig()
  const sent = send('w/1')
  const waits = [outbox.whenEmpty(), outbox.whenEmpty()]
  ack(sent, broker1)
  await t.resolves(Promise.all(waits), 'both resolve once the last one is acked')
})
