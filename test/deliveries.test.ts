import t from 'tap'
import type { UpstreamConnection } from '../src/upstream/connection.js'
import { Deliveries } from '../src/terminal/deliveries.js'

// Deliveries only keeps the connection it is given: any object stands for one here.
const connection = {} as UpstreamConnection

t.test('a broker\'s packet identifier is kept while it is free', async (t) => {
  const deliveries = new Deliveries()
  t.equal(deliveries.open(0, 7, 1, connection)?.downstreamId, 7)
  t.equal(deliveries.open(1, 9, 2, connection)?.downstreamId, 9)
  t.equal(deliveries.size, 2)
})

t.test('the same identifier from the other broker gets another one, and both are found by theirs', async (t) => {
  const deliveries = new Deliveries()
  const first = deliveries.open(0, 7, 1, connection)!
  const second = deliveries.open(1, 7, 1, connection)!
  t.not(second.downstreamId, 7)
  t.equal(deliveries.resent(0, 7), first)
  t.equal(deliveries.resent(1, 7), second)
  t.equal(deliveries.get(second.downstreamId), second)
  deliveries.close(first)
  t.equal(deliveries.resent(0, 7), undefined)
  t.equal(deliveries.get(7), undefined, 'the terminal\'s identifier is free again')
})

t.test('all 65,535 identifiers in flight: no more until one is acked', async (t) => {
  const deliveries = new Deliveries()
  for (let id = 1; id <= 65535; id++) deliveries.open(0, id, 1, connection)
  t.equal(deliveries.open(1, 1, 1, connection), undefined)
  deliveries.close(deliveries.get(40_000)!)
  t.equal(deliveries.open(1, 1, 1, connection)?.downstreamId, 40_000)
})

t.test('clear forgets everything', async (t) => {
  const deliveries = new Deliveries()
  deliveries.open(0, 1, 2, connection, 'released')
  deliveries.clear()
  t.equal(deliveries.size, 0)
  t.equal(deliveries.resent(0, 1), undefined)
})

t.test('a broker identifier reused for a new message: the old delivery keeps the terminal\'s identifier', async (t) => {
  const deliveries = new Deliveries()
  const stale = deliveries.open(0, 5, 1, connection)!
  deliveries.detach(stale)
  t.equal(deliveries.resent(0, 5), undefined, 'no longer found by the broker\'s identifier')
  t.equal(deliveries.get(5), stale, 'still the terminal\'s until it acks')
  const fresh = deliveries.open(0, 5, 1, connection)!
  t.not(fresh.downstreamId, 5, 'the new message gets another identifier')
  t.equal(deliveries.resent(0, 5), fresh)
})
