import t from 'tap'
t.test('ts works', async t => { t.equal(1 + 1, 2) })
