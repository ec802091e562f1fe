/** The routing seam on its own (src/routing/routing-table.ts): policy matching and the routing decision, no broker. */
import t from 'tap'
import type { PolicyMode, PolicyRule } from '../src/config/schema.js'
import type { TierMode } from '../src/events.js'
import { PolicyTable, type Route, route, RoutingTable } from '../src/routing/routing-table.js'

interface Target { online: boolean, readonly name: 'broker1' | 'broker2' }

const rule = (topic: string, mode: PolicyMode, extra: Partial<PolicyRule> = {}): PolicyRule => ({ topic, mode, ...extra })

/** A route as one word, naming the very link object it carries: `live:broker2`, `store:anyBroker`, … */
function describe (result: Route<Target>, links: readonly [Target, Target]): string {
  switch (result.kind) {
    case 'live':
    case 'both': {
      const which = links.indexOf(result.link)
      return `${result.kind}:${which === -1 ? 'a link not given' : links[which]!.name}`
    }
    case 'store': return result.anyBroker ? 'store:anyBroker' : 'store'
    default: return result.kind
  }
}

const MODES: readonly TierMode[] = ['normal', 'failover', 'replaying']
const POLICIES: readonly PolicyMode[] = ['failover', 'queue', 'both', 'drop']
const ANY = '*'
type Or<T> = T | typeof ANY
/** mode, policy, Broker1 session online, Broker2 session online, store open → the route. */
type Row = readonly [TierMode, Or<PolicyMode>, Or<boolean>, Or<boolean>, Or<boolean>, string]

// README "Tier modes" and "Per-topic policy": the whole table, one row per case ('*': whatever the value).
const TABLE: readonly Row[] = [
  ['normal', ANY, true, ANY, ANY, 'live:broker1'],
  ['normal', ANY, false, ANY, ANY, 'wait'], // the terminal's own Broker1 session is reconnecting
  // Broker1 is up again: its publishes go behind the backlog, or wait when the store takes none.
  ['replaying', ANY, ANY, ANY, true, 'store'],
  ['replaying', ANY, ANY, ANY, false, 'wait'],
  // Broker1 is down (or not yet stable for failbackDelayMs): its own session's state does not count.
  ['failover', 'failover', ANY, true, true, 'live:broker2'],
  ['failover', 'failover', ANY, true, false, 'live:broker2'],
  ['failover', 'failover', ANY, false, true, 'store:anyBroker'],
  ['failover', 'failover', ANY, false, false, 'wait'],
  ['failover', 'queue', ANY, true, true, 'store'],
  ['failover', 'queue', ANY, true, false, 'wait'],
  ['failover', 'queue', ANY, false, true, 'store'],
  ['failover', 'queue', ANY, false, false, 'wait'],
  ['failover', 'both', ANY, true, true, 'both:broker2'],
  ['failover', 'both', ANY, true, false, 'live:broker2'],
  ['failover', 'both', ANY, false, true, 'store'],
  ['failover', 'both', ANY, false, false, 'wait'],
  ['failover', 'drop', ANY, true, true, 'drop'],
  ['failover', 'drop', ANY, true, false, 'drop'],
  ['failover', 'drop', ANY, false, true, 'drop'],
  ['failover', 'drop', ANY, false, false, 'drop']
]

const fits = <T>(cell: Or<T>, value: T): boolean => cell === ANY || cell === value

t.test('route(): every mode × policy × links online × store gives the route of the table', async (t) => {
  let cases = 0
  for (const mode of MODES) {
    for (const policy of POLICIES) {
      for (const primaryOnline of [true, false]) {
        for (const standbyOnline of [true, false]) {
          for (const store of [true, false]) {
            const rows = TABLE.filter(([m, p, b1, b2, s]) => m === mode && fits(p, policy) && fits(b1, primaryOnline) && fits(b2, standbyOnline) && fits(s, store))
            const name = `${mode} ${policy} broker1 ${primaryOnline ? 'on' : 'off'} broker2 ${standbyOnline ? 'on' : 'off'} store ${store ? 'open' : 'none'}`
            t.equal(rows.length, 1, `${name}: one row of the table`)
            const links = [{ online: primaryOnline, name: 'broker1' }, { online: standbyOnline, name: 'broker2' }] as const
            t.equal(describe(route({ mode: policy }, mode, links, store), links), rows[0]?.[5], name)
            cases++
          }
        }
      }
    }
  }
  t.equal(cases, 3 * 4 * 2 * 2 * 2, 'all 96 cases')
})

t.test('route() looks at the policy\'s mode only: ttl and maxQos do not change where a publish goes', async (t) => {
  const links = [{ online: false, name: 'broker1' }, { online: true, name: 'broker2' }] as const
  t.equal(describe(route({ mode: 'both', ttl: 1000, maxQos: 0 }, 'failover', links, true), links), 'both:broker2')
  t.equal(describe(route({ mode: 'failover', ttl: 1000 }, 'failover', [links[0], { online: false, name: 'broker2' }], true), links), 'store:anyBroker')
})

t.test('RoutingTable routes by its mode and storeOpen, which the mode machine sets', async (t) => {
  const links = [{ online: true, name: 'broker1' }, { online: false, name: 'broker2' }] as const
  const table = new RoutingTable(new PolicyTable([rule('q/#', 'queue')], 'failover'), true)
  t.equal(table.mode, 'normal', 'starts in normal mode')
  t.equal(table.storeOpen, true, 'with a store, the store is open from the start')
  const queue = table.policyFor('q/1')
  t.equal(describe(table.route(queue, links), links), 'live:broker1')
  table.mode = 'failover'
  t.equal(describe(table.route(queue, links), links), 'store')
  t.equal(describe(table.route(table.policyFor('other'), links), links), 'store:anyBroker', 'the default policy, failover')
  table.mode = 'replaying'
  t.equal(describe(table.route(queue, links), links), 'store', 'behind the backlog')
  table.storeOpen = false // the replay caught up: new publishes wait for the failback instead
  t.equal(describe(table.route(queue, links), links), 'wait')
  table.mode = 'normal'
  t.equal(describe(table.route(queue, links), links), 'live:broker1')

  const storeless = new RoutingTable(new PolicyTable([], 'queue'), false)
  t.equal(storeless.storeOpen, false, 'no store: never open')
  storeless.mode = 'failover'
  t.equal(describe(storeless.route(storeless.policyFor('x'), links), links), 'wait')
})

t.test('RoutingTable.usePolicies replaces the policies whole; a policy already looked up keeps its value', async (t) => {
  const table = new RoutingTable(new PolicyTable([rule('a/#', 'drop'), rule('b', 'queue')], 'both'), true)
  const before = table.policyFor('a/1')
  t.same(before, { mode: 'drop' })
  table.usePolicies(new PolicyTable([rule('a/#', 'queue', { ttl: 5000 })], 'failover'))
  t.same(table.policyFor('a/1'), { mode: 'queue', ttl: 5000 })
  t.same(table.policyFor('b'), { mode: 'failover' }, 'a rule gone: the new default')
  t.same(before, { mode: 'drop' }, 'a publish routed before the reload keeps its policy')
})

t.test('PolicyTable: the first matching rule wins, not the most specific one', async (t) => {
  const table = new PolicyTable([
    rule('a/+/c', 'queue'),
    rule('a/#', 'drop'),
    rule('a/b/c', 'failover'),
    rule('#', 'both')
  ], 'failover')
  t.equal(table.lookup('a/b/c').mode, 'queue', 'three rules match; the first listed wins')
  t.equal(table.lookup('a/b').mode, 'drop', 'a/+/c does not match: the second')
  t.equal(table.lookup('z').mode, 'both', 'only # matches')
  const reversed = new PolicyTable([rule('#', 'both'), rule('a/b/c', 'failover')], 'queue')
  t.equal(reversed.lookup('a/b/c').mode, 'both', 'an exact rule listed after # never applies')
  const duplicate = new PolicyTable([rule('same', 'drop', { ttl: 1 }), rule('same', 'queue', { ttl: 2 })], 'both')
  t.same(duplicate.lookup('same'), { mode: 'drop', ttl: 1 }, 'the same filter twice: the first')
})

t.test('PolicyTable: + matches exactly one level, an empty one included [MQTT-4.7.1-3]', async (t) => {
  const table = new PolicyTable([rule('sport/+', 'drop'), rule('a/+/c', 'queue'), rule('+', 'failover')], 'both')
  t.equal(table.lookup('sport/tennis').mode, 'drop')
  t.equal(table.lookup('sport/').mode, 'drop', '"sport/+" matches "sport/"')
  t.equal(table.lookup('sport').mode, 'failover', '"sport/+" does not match "sport" (the lone + does)')
  t.equal(table.lookup('sport/tennis/player1').mode, 'both', 'nor two levels down')
  t.equal(table.lookup('a/b/c').mode, 'queue')
  t.equal(table.lookup('a//c').mode, 'queue', 'an empty level is a level')
  t.equal(table.lookup('a/c').mode, 'both')
  t.equal(table.lookup('a/b/d/c').mode, 'both')
  t.equal(table.lookup('/x').mode, 'both', '"+" is one level only, "/x" has two')
})

t.test('PolicyTable: # matches every level below, and the parent level itself [MQTT-4.7.1-2]', async (t) => {
  const table = new PolicyTable([rule('sport/tennis/#', 'drop'), rule('x/+/#', 'queue')], 'both')
  t.equal(table.lookup('sport/tennis').mode, 'drop', 'the parent level')
  t.equal(table.lookup('sport/tennis/player1').mode, 'drop')
  t.equal(table.lookup('sport/tennis/player1/ranking/wimbledon').mode, 'drop')
  t.equal(table.lookup('sport/tennis/').mode, 'drop', 'an empty level below')
  t.equal(table.lookup('sport').mode, 'both', 'not the level above the parent')
  t.equal(table.lookup('sport/tennisball').mode, 'both', 'levels are compared whole')
  t.equal(table.lookup('x/y').mode, 'queue', 'x/+/# matches x/y: # takes the parent')
  t.equal(table.lookup('x').mode, 'both')
  const all = new PolicyTable([rule('#', 'drop')], 'both')
  t.equal(all.lookup('x').mode, 'drop')
  t.equal(all.lookup('/').mode, 'drop')
  t.equal(all.lookup('a/b/c/d/e/f').mode, 'drop')
})

t.test('PolicyTable: $ topics match the filters that name them', async (t) => {
  const table = new PolicyTable([rule('$SYS/#', 'drop'), rule('$aws/things/+/shadow', 'queue')], 'both')
  t.equal(table.lookup('$SYS/broker/load').mode, 'drop')
  t.equal(table.lookup('$SYS').mode, 'drop')
  t.equal(table.lookup('$aws/things/pump-7/shadow').mode, 'queue')
  t.equal(table.lookup('$aws/things/pump-7/other').mode, 'both')
  t.equal(table.lookup('SYS/broker/load').mode, 'both', '$ is part of the level: "SYS" is another topic')
})

t.test('PolicyTable: the default policy when no rule matches, and no rule at all', async (t) => {
  for (const mode of POLICIES) {
    t.same(new PolicyTable([rule('a', 'drop')], mode).lookup('b'), { mode }, `default ${mode}`)
    t.same(new PolicyTable([], mode).lookup('a'), { mode }, `no rules, default ${mode}`)
  }
  t.same(new PolicyTable([rule('a', 'drop')], 'queue').lookup('a/b'), { mode: 'queue' }, 'a filter without wildcard matches its topic only')
})

t.test('PolicyTable carries a rule\'s ttl and maxQos, and adds none a rule did not set', async (t) => {
  const table = new PolicyTable([
    rule('t/ttl', 'queue', { ttl: 600_000 }),
    rule('t/cap0', 'both', { maxQos: 0 }),
    rule('t/both', 'failover', { ttl: 1, maxQos: 1 }),
    rule('t/none', 'drop')
  ], 'both')
  t.same(table.lookup('t/ttl'), { mode: 'queue', ttl: 600_000 })
  t.same(table.lookup('t/cap0'), { mode: 'both', maxQos: 0 }, 'maxQos 0 is kept (not mistaken for unset)')
  t.same(table.lookup('t/both'), { mode: 'failover', ttl: 1, maxQos: 1 })
  for (const topic of ['t/ttl', 't/none', 'unmatched']) {
    const policy = table.lookup(topic)
    if (topic !== 't/ttl') t.notOk('ttl' in policy, `${topic}: no ttl key`)
    t.notOk('maxQos' in policy, `${topic}: no maxQos key`)
  }
  t.notOk('topic' in table.lookup('t/ttl'), 'the policy is not the rule: no topic')
})

t.test('PolicyTable answers the same for a topic before, during and after its cache fills up (10,000 topics)', async (t) => {
  // The policy hangs on the last level, so that topics alike in their first characters differ in policy.
  const table = new PolicyTable([rule('c/+/even', 'drop', { ttl: 7 }), rule('c/+/odd', 'queue')], 'failover')
  const first = table.lookup('c/0/even')
  t.same(first, { mode: 'drop', ttl: 7 })
  t.equal(table.lookup('c/0/even'), first, 'the cached answer is the same object')
  const kinds = [['even', 'drop'], ['odd', 'queue'], ['none', 'failover']] as const
  const wrong: string[] = []
  for (let i = 0; i < 25_000; i++) {
    const [last, expected] = kinds[i % 3]!
    const topic = `c/${i}/${last}`
    // Each topic twice: once matched, once from the cache (or after the cache was emptied).
    if (table.lookup(topic).mode !== expected || table.lookup(topic).mode !== expected) wrong.push(topic)
    if (i % 4999 === 0 && table.lookup('c/first/odd').mode !== 'queue') wrong.push(`c/first/odd after ${i}`)
  }
  t.same(wrong, [], 'every answer right across 25,000 topics')
  t.same(table.lookup('c/0/even'), { mode: 'drop', ttl: 7 }, 'the first topic again, long after it left the cache')
  t.same(table.lookup('c/0/none'), { mode: 'failover' })
})

t.test('PolicyTable: a filter that starts with a wildcard matches no $ topic [MQTT-4.7.2-1]', async (t) => {
  const table = new PolicyTable([rule('#', 'drop'), rule('+/things/+/shadow', 'queue'), rule('$aws/#', 'failover')], 'both')
  t.equal(table.lookup('things/x').mode, 'drop', '# matches an ordinary topic')
  t.equal(table.lookup('$aws/things/pump-7/shadow').mode, 'failover', 'a filter naming $aws matches it')
  t.equal(table.lookup('$SYS/broker/load').mode, 'both', '# does not match a $ topic: the default')
  t.equal(new PolicyTable([rule('+/things/+/shadow', 'queue')], 'both').lookup('$aws/things/pump-7/shadow').mode, 'both', '+/… does not match a $ topic')
})
