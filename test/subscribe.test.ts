import { EventEmitter, once } from 'node:events'
import { setImmediate as tick } from 'node:timers/promises'
import t from 'tap'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import {
  inbox, publishAt, subackCodes, subscribedAt, subscribeLog, unsubscribedAt
} from './support/observe.js'
import { startTier } from './support/tier.js'

t.test('SUBSCRIBE is mirrored: what either broker delivers reaches the terminal', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'sub-mirror' })
  const box = inbox(terminal)
  await terminal.subscribeAsync('m/#', { qos: 1 })
  await publishAt(t, b1.url, 'm/from-b1')
  t.equal((await box.waitForTopic('m/from-b1')).payload, `at ${b1.url}`)
  await publishAt(t, b2.url, 'm/from-b2')
  t.equal((await box.waitForTopic('m/from-b2')).payload, `at ${b2.url}`)
})

t.test('the SUBACK waits for the slower broker', async (t) => {
  const hookCalled = new EventEmitter()
  const held: Array<() => void> = []
  const b1 = await startAedes(t)
  const b2 = await startAedes(t, {
    aedes: {
      authorizeSubscribe (_client, subscription, callback) {
        if (subscription.topic !== 'held/#') return callback(null, subscription)
        held.push(() => callback(null, subscription))
        hookCalled.emit('called')
      }
    }
  })
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'sub-held' })
  const atB1 = subscribedAt(b1.aedes, 'sub-held', 'held/#')
  const atB2Hook = once(hookCalled, 'called')
  let acked = false
  const suback = terminal.subscribeAsync('held/#', { qos: 1 }).then((granted) => { acked = true; return granted })
  await Promise.all([atB1, atB2Hook])
  await tick()
  await tick()
  t.notOk(acked, 'no SUBACK while Broker2 has not answered (Broker1 already has)')
  t.equal(held.length, 1)
  held.shift()!()
  const granted = await suback
  t.same(granted.map((g) => g.qos), [1], 'SUBACK after both answered')
})

t.test('a broker that refuses a topic: SUBACK 0x80, and the other broker\'s grant is withdrawn', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t, {
    aedes: {
      authorizeSubscribe (_client, subscription, callback) {
        callback(null, subscription.topic === 'secret/#' ? null : subscription)
      }
    }
  })
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'sub-refused' })
  const box = inbox(terminal)
  t.same(await subackCodes(terminal, 'secret/#', 1), [128], 'refused by Broker2 → failure for the terminal')
  t.same(await subackCodes(terminal, 'open/#', 1), [1])
  // Same publisher connection, same upstream session: secret/x would arrive before open/x.
  await publishAt(t, b1.url, 'secret/x', 'open/x')
  await box.waitForTopic('open/x')
  t.equal(box.count('secret/#'), 0, 'nothing arrives for a topic the terminal was refused')
})

t.test('UNSUBSCRIBE is mirrored at both brokers', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'sub-un' })
  const box = inbox(terminal)
  await terminal.subscribeAsync({ 'gone/#': { qos: 1 }, 'ctrl/#': { qos: 1 } })
  // UNSUBACK is local (docs/ARCHITECTURE.md); the brokers' own events say when they dropped it.
  const dropped = [unsubscribedAt(b1.aedes, 'sub-un', 'gone/#'), unsubscribedAt(b2.aedes, 'sub-un', 'gone/#')]
  await terminal.unsubscribeAsync('gone/#')
  await Promise.all(dropped)
  await publishAt(t, b1.url, 'gone/1', 'ctrl/1')
  await box.waitForTopic('ctrl/1')
  await publishAt(t, b2.url, 'gone/2', 'ctrl/2')
  await box.waitForTopic('ctrl/2')
  t.equal(box.count('gone/#'), 0, 'no message for the unsubscribed topic from either broker')
})

t.test('subscriptions are applied at a broker that was down when they were made', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  await b2.close()
  const { url, tier } = await startTier(t, b1.url, b2.url)
  t.equal(tier.state.brokers.broker2.state, 'down')
  const terminal = await connectClient(t, url, { clientId: 'sub-late' })
  const box = inbox(terminal)
  t.same((await terminal.subscribeAsync('late/#', { qos: 1 })).map((g) => g.qos), [1], 'degraded: Broker1 alone grants')
  await b2.restart()
  await subscribedAt(b2.aedes, 'sub-late', 'late/#')
  await publishAt(t, b2.url, 'late/b2')
  t.equal((await box.waitForTopic('late/b2')).topic, 'late/b2', 'a message published at the returned Broker2 reaches the terminal')
})

t.test('subscriptions are re-applied at Broker1 after it restarted empty', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'sub-again' })
  const box = inbox(terminal)
  await terminal.subscribeAsync('again/#', { qos: 1 })
  await b1.restart()
  await subscribedAt(b1.aedes, 'sub-again', 'again/#')
  await publishAt(t, b1.url, 'again/b1')
  t.equal((await box.waitForTopic('again/b1')).topic, 'again/b1', 'a message published at the restarted Broker1 reaches the terminal')
})

t.test('$SYS/dual-broker/ topics are not mirrored upstream', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'sub-sys' })
  const logs = [subscribeLog(b1.aedes, 'sub-sys'), subscribeLog(b2.aedes, 'sub-sys')]
  const control = [subscribedAt(b1.aedes, 'sub-sys', 'ctrl/#'), subscribedAt(b2.aedes, 'sub-sys', 'ctrl/#')]
  t.same(await subackCodes(terminal, '$SYS/dual-broker/#', 0), [0], 'served locally')
  await terminal.subscribeAsync('ctrl/#', { qos: 0 })
  await Promise.all(control)
  t.same(logs, [[['ctrl/#']], [['ctrl/#']]], 'each broker saw the control subscription only')
})
