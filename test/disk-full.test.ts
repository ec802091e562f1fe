import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { statusServer } from '../plugins/status/index.js'
import { connectClient } from './support/client.js'
import { nextEvent, startDurableTier, tempDir } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { missing } from './support/sequence.js'

/** A 2 MiB tmpfs: a real disk that fills up. Needs root (CI runs as root). */
function smallDisk (t: Test): string {
  const dir = tempDir(t, 'full-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir])
  t.teardown(() => { execFileSync('umount', ['-l', dir]) })
  return dir
}

t.test('the store\'s disk is full: nothing unstored is acknowledged, the state says why, the stored part is replayed', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const disk = smallDisk(t)
  mkdirSync(join(disk, 'pending'))
  const { url, tier } = await startDurableTier(t, b1.url, b2.url, {
    defaultPolicy: 'queue',
    store: { path: join(disk, 'pending'), fsync: 'batch' }
  })
  const failover = nextEvent(tier, 'failover')
  await b1.kill()
  await failover

  const acked: number[] = []
  let refusedAt = -1
  for (let seq = 0; seq < 1000 && refusedAt < 0; seq++) {
    const terminal = await connectClient(t, url, { clientId: 'filler' })
    const outcome = await new Promise<'acked' | 'closed'>((resolve) => {
      terminal.once('close', () => resolve('closed'))
      terminal.publish('fill/a', JSON.stringify({ seq, pad: 'x'.repeat(16 * 1024) }), { qos: 1 }, (error) => { if (error == null) resolve('acked') })
    })
    if (outcome === 'acked') acked.push(seq)
    else refusedAt = seq
    terminal.end(true)
  }
  t.ok(refusedAt > 0, `the disk filled after ${acked.length} messages and publish ${refusedAt} was refused, not acknowledged`)
  t.equal(tier.state.store.writable, false, 'tier.state says the store does not take writes')
  t.match(tier.state.store.error, /space|IO error/i, `and why: ${tier.state.store.error}`)
  const status = await statusServer(tier, { port: 0 })
  t.teardown(() => status.close())
  const health = await (await fetch(`${status.url}/health`)).json() as { store: { writable: boolean, error?: string } }
  t.equal(health.store.writable, false, '/health says so too')

  const failback = nextEvent(tier, 'failback')
  await b1.restart()
  const atBroker1 = await record(t, b1.url, 'fill/#')
  await failback
  await atBroker1.waitFor(acked.length, 20_000)
  t.same(missing(acked, atBroker1.sequences('fill/')), [], 'every acknowledged message reached Broker1')
})
