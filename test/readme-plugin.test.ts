/**
 * README "Plugins of the tier" shows a plugin of one's own, `tierPlugin('alarms')`,
 * that publishes with `aedes.publish` on failover. Its code is taken from README
 * as written (TypeScript, compiled here) and run against real brokers: the alarm
 * must reach a subscriber at Broker2 and a terminal through the tier.
 */
import { readFileSync } from 'node:fs'
import ts from 'typescript'
import t from 'tap'
import { tierPlugin } from '../src/index.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { nextEvent } from './support/observe.js'
import { startTier } from './support/tier.js'

/** The lines of README's plugin example from `const alarms` to its `tier.register`. */
function readmeAlarms (): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8').split('\n')
  const from = readme.findIndex((line) => line.startsWith('const alarms = tierPlugin(\'alarms\''))
  const to = readme.findIndex((line, i) => i > from && line.startsWith('await tier.register(alarms'))
  if (from < 0 || to < 0) throw new Error('README has no tierPlugin(\'alarms\') example any more')
  return ts.transpileModule(readme.slice(from, to + 1).join('\n'), { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText
}

t.test('README\'s alarms plugin: its aedes.publish on failover reaches Broker2\'s subscribers and the terminals', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const { aedes, tier, url } = await startTier(t, b1.url, b2.url)
  const atBroker2 = await connectClient(t, b2.url, { clientId: 'operator' })
  await atBroker2.subscribeAsync('site/alarms/tier', { qos: 1 })
  const terminal = await connectClient(t, url, { clientId: 'panel' })
  await terminal.subscribeAsync('site/alarms/tier', { qos: 1 })

  const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<void>
  await new AsyncFunction('aedes', 'tier', 'tierPlugin', readmeAlarms())(aedes, tier, tierPlugin)

  const atOperator = nextEvent(atBroker2, 'message', (topic: string) => topic === 'site/alarms/tier', 10_000)
  const atPanel = nextEvent(terminal, 'message', (topic: string) => topic === 'site/alarms/tier', 10_000)
  await b1.close()
  const [[, operatorPayload], [, panelPayload]] = await Promise.all([atOperator, atPanel]) as Array<[string, Buffer]>
  t.equal(String(operatorPayload), 'failover', 'a subscriber straight at Broker2 got the alarm')
  t.equal(String(panelPayload), 'failover', 'a terminal through the tier got it, through Broker2')
})
