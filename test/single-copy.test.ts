/**
 * Which copy of a message the tier keeps where an MQTT 5 broker sends one per matching filter
 * (the conformance suite compares the result with mosquitto's 3.1.1 sessions end to end; these
 * are the edges it cannot time: a $ topic, a filter not yet granted, an UNSUBSCRIBE in flight).
 */
import t from 'tap'
import type { IPublishPacket } from 'mqtt-packet'
import { SingleCopy } from '../src/upstream/single-copy.js'

function copy (topic: string, identifier?: number): IPublishPacket {
  return {
    cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 1, retain: false, dup: false, messageId: 1,
    ...(identifier !== undefined && { properties: { subscriptionIdentifier: identifier } })
  }
}

function subscribed (filters: Array<[string, number]>): { copies: SingleCopy, ids: Map<string, number | undefined> } {
  const copies = new SingleCopy()
  const ids = new Map(filters.map(([filter]) => [filter, copies.sent(filter)]))
  for (const [filter, grant] of filters) copies.granted(filter, grant)
  return { copies, ids }
}

t.test('of a/#, a/+ and a/b the copy of a/b is kept, then a/+\'s, then a/#\'s (mosquitto\'s tree order)', async (t) => {
  const { copies, ids } = subscribed([['a/#', 2], ['a/+', 1], ['a/b', 0]])
  t.equal(ids.get('a/b'), undefined, 'a filter without wildcards has no identifier')
  t.notOk(copies.extra(copy('a/b')), 'a/b kept')
  t.ok(copies.extra(copy('a/b', ids.get('a/+'))), 'a/+ extra')
  t.ok(copies.extra(copy('a/b', ids.get('a/#'))), 'a/# extra')
  t.notOk(copies.extra(copy('a/c', ids.get('a/+'))), 'on a/c: a/+ kept')
  t.ok(copies.extra(copy('a/c', ids.get('a/#'))), 'on a/c: a/# extra')
  t.notOk(copies.extra(copy('a/c/d', ids.get('a/#'))), 'on a/c/d a/# alone matches')
  t.notOk(copies.extra(copy('a/b', 99)), 'a copy through a filter the session does not know is kept')
  t.notOk(copies.extra({ ...copy('a/b', ids.get('a/#')), retain: true }), 'a retained copy is its subscription\'s own')
})

t.test('[MQTT-4.7.2-1] a $ topic: # sent no copy, so $SYS/#\'s is kept', async (t) => {
  const { copies, ids } = subscribed([['#', 2], ['$SYS/#', 0]])
  t.notOk(copies.extra(copy('$SYS/x', ids.get('$SYS/#'))))
})

t.test('a filter the broker has not granted yet is never the one kept: its copy may not come', async (t) => {
  const copies = new SingleCopy()
  const first = copies.sent('a/#')
  copies.granted('a/#', 1)
  const second = copies.sent('a/+') // no SUBACK yet
  t.notOk(copies.extra(copy('a/b', first)), 'a/# kept')
  t.ok(copies.extra(copy('a/b', second)), 'a/+ extra until its SUBACK')
  copies.granted('a/+', 1)
  t.notOk(copies.extra(copy('a/b', second)), 'then a/+ kept')
  t.ok(copies.extra(copy('a/b', first)))
})

t.test('an UNSUBSCRIBE in flight: the filter counts until its UNSUBACK, and one subscribed again meanwhile waits for its SUBACK', async (t) => {
  const { copies, ids } = subscribed([['a/#', 1], ['a/+', 1]])
  copies.leaving('a/+')
  t.ok(copies.extra(copy('a/b', ids.get('a/#'))), 'routed before the broker read it: a/+ still kept')
  t.notOk(copies.extra(copy('a/b', ids.get('a/+'))))
  t.equal(copies.sent('a/+'), ids.get('a/+'), 'subscribed again: the same identifier')
  copies.left('a/+')
  t.notOk(copies.extra(copy('a/b', ids.get('a/#'))), 'a/+ not granted again yet: a/# kept')
  copies.granted('a/+', 1)
  t.ok(copies.extra(copy('a/b', ids.get('a/#'))), 'granted again: a/+ kept')
  copies.leaving('a/+')
  copies.left('a/+')
  t.notOk(copies.extra(copy('a/b', ids.get('a/#'))), 'gone: a/# alone')
})
