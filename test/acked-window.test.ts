import t from 'tap'
import { type AckedPublish, AckedWindow } from '../src/routing/acked-window.js'

const message = (i: number, id?: string): AckedPublish => ({
  topic: `t/${i}/ü`, payload: Buffer.alloc(i % 300, i & 0xff), qos: (i % 3) as 0 | 1 | 2, retain: i % 2 === 0, id
})

t.test('AckedWindow gives back what one broker acked within the window, byte for byte and in order', async (t) => {
  const window = new AckedWindow(100)
  window.add(message(1, 'a.1'), 0, 0)
  window.add(message(2), 1, 10)
  window.add(message(3, 'a.3'), 0, 20)
  t.same(window.takeAckedBy(0, 50), [message(1, 'a.1'), message(3, 'a.3')], 'Broker1\'s two, not Broker2\'s')
  t.same(window.takeAckedBy(0, 50), [], 'taken out of the window')
  t.same(window.takeAckedBy(1, 50), [message(2)], 'Broker2\'s stays, for a loss of Broker2 within its window')
  t.same(window.takeAckedBy(1, 50), [], 'and is taken once')
  window.add(message(4), 0, 0)
  window.add(message(5), 0, 10)
  t.same(window.takeAckedBy(0, 105), [message(5)], 'older than the window: gone')
})

t.test('AckedWindow keeps every byte across its growth and compaction', async (t) => {
  const window = new AckedWindow(100)
  for (let i = 0; i < 2000; i++) window.add(message(i, i % 7 === 0 ? `id.${i}` : undefined), i % 2, i)
  const expected = []
  for (let i = 1900; i < 2000; i++) if (i % 2 === 0) expected.push(message(i, i % 7 === 0 ? `id.${i}` : undefined))
  t.same(window.takeAckedBy(0, 1999), expected, 'the last 100 ms of Broker1\'s, intact')
})
