import t from 'tap'
import { readFileSync } from 'node:fs'
import { createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'

interface Target { expr?: string }
interface Panel { id: number, type: string, title: string, datasource?: { uid?: string }, targets?: Target[] }
interface Dashboard {
  __inputs: Array<{ name: string, pluginId: string }>
  panels: Panel[]
  templating: { list: Array<{ query: string | { query: string } }> }
}

const dashboard = JSON.parse(readFileSync(new URL('../examples/grafana-dashboard.json', import.meta.url), 'utf8')) as Dashboard

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset'])

/** The metric names a PromQL expression (or Grafana's label_values(metric, label)) selects. */
function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\$\{?\w+\}?/g, '') // Grafana variables
    .replace(/label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)/g, '$1')
  // A word followed by "(" is a function; numbers (0.99) never start with a letter.
  return [...bare.matchAll(/[a-zA-Z_:][\w:]*/g)]
    .filter((m) => !KEYWORDS.has(m[0]) && !bare.slice(m.index + m[0].length).trimStart().startsWith('('))
    .map((m) => m[0])
}

/** Every series name the scrape has: sample lines, and a histogram's _bucket/_sum/_count even before its first sample. */
function served (text: string): Set<string> {
  const names = new Set<string>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)$/.exec(line)
    if (type !== null) {
      names.add(type[1]!)
      if (type[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(type[1]! + suffix)
    } else if (line !== '' && !line.startsWith('#')) names.add(/^[a-zA-Z_:][\w:]*/.exec(line)![0])
  }
  return names
}

t.test('metricNames reads the names out of PromQL, not its functions, labels or variables', async (t) => {
  t.same(metricNames('histogram_quantile(0.99, sum by (le, broker) (rate(x_bucket{instance=~"$instance"}[$__rate_interval])))'), ['x_bucket'])
  t.same(metricNames('increase(a_total[$__range]) / ignoring(job) b'), ['a_total', 'b'])
  t.same(metricNames('label_values(dualbroker_broker_up, instance)'), ['dualbroker_broker_up'])
})

t.test('the Grafana dashboard queries only metrics a running tier serves at /metrics', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const server = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: b1.url }, broker2: { url: b2.url }, data: tempDir(t), http: { port: 0 } })
  t.teardown(() => server.close())
  // One acked publish, so that the latency histogram has series too.
  const terminal = await connectClient(t, `mqtt://127.0.0.1:${server.addresses.mqtt.port}`, { clientId: 'dashboard' })
  await terminal.publishAsync('telemetry/x', '1', { qos: 1 })
  const { host, port } = server.addresses.http!
  const scrape = await fetch(`http://${host}:${port}/metrics`)
  t.equal(scrape.status, 200)
  const names = served(await scrape.text())
  t.ok(names.has('dualbroker_process_resident_memory_bytes'), 'process metrics, prefixed')
  t.ok(names.has('dualbroker_nodejs_eventloop_lag_p99_seconds'), 'event-loop lag, prefixed')

  const expressions = [
    ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? '')),
    ...dashboard.templating.list.map((variable) => typeof variable.query === 'string' ? variable.query : variable.query.query)
  ]
  t.ok(expressions.length >= 15, `${expressions.length} queries`)
  for (const expr of expressions) {
    const used = metricNames(expr)
    t.ok(used.length > 0, `names a metric: ${expr}`)
    for (const name of used) t.ok(names.has(name), `${name} is served`)
  }
})

t.test('the dashboard imports as is: a Prometheus input, unique panel ids, every panel on that input', async (t) => {
  t.match(dashboard.__inputs, [{ name: 'DS_PROMETHEUS', pluginId: 'prometheus' }])
  const ids = dashboard.panels.map((panel) => panel.id)
  t.equal(new Set(ids).size, ids.length)
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    t.equal(panel.datasource?.uid, '${DS_PROMETHEUS}', `${panel.title} uses the imported data source`)
  }
})
