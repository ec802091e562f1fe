import t from 'tap'
import { join } from 'node:path'
import { ConfigError, flagsToConfig, loadConfigFile, maskSecrets, redactText, resolveConfig, type CliFlags, type ConfigSources } from '../src/config/load.js'
import { embeddedPorts, listenHost } from '../src/config/demo.js'

/** The problem lines of a config that must be refused. */
function problems (sources: ConfigSources): string[] {
  try {
    resolveConfig(sources)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('config was accepted')
}

function fileProblems (path: string): string[] {
  try {
    loadConfigFile(path)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('file was accepted')
}

t.test('loadConfigFile reads YAML and JSON', async (t) => {
  const dir = t.testdir({
    'a.yaml': 'listen:\n  port: 1999\nstore:\n  maxBytes: 512MiB\n',
    'a.yml': 'data: /var/lib/x\n',
    'a.json': '{ "listen": { "port": 2000 } }',
    'a.conf': '{ "data": "json read as YAML" }',
    'empty.yaml': ''
  })
  t.same(loadConfigFile(join(dir, 'a.yaml')), { listen: { port: 1999 }, store: { maxBytes: '512MiB' } })
  t.same(loadConfigFile(join(dir, 'a.yml')), { data: '/var/lib/x' })
  t.same(loadConfigFile(join(dir, 'a.json')), { listen: { port: 2000 } })
  t.same(loadConfigFile(join(dir, 'a.conf')), { data: 'json read as YAML' })
  t.same(loadConfigFile(join(dir, 'empty.yaml')), {})
})

t.test('loadConfigFile names the file and the place of a parse error', async (t) => {
  const dir = t.testdir({
    'bad.yaml': 'listen:\n  port: [1\n',
    'dup.yaml': 'data: a\ndata: b\n',
    'bad.json': '{\n  "data": "x",\n}'
  })
  const [yaml] = fileProblems(join(dir, 'bad.yaml'))
  t.match(yaml, /bad\.yaml line \d+, column \d+: invalid YAML/)
  t.match(fileProblems(join(dir, 'dup.yaml'))[0], /dup\.yaml line 2, column 1: invalid YAML: .*unique/i)
  t.match(fileProblems(join(dir, 'bad.json'))[0], /bad\.json line 3, column 1: invalid JSON/)
  t.match(fileProblems(join(dir, 'missing.yaml'))[0], /missing\.yaml: cannot read it \(ENOENT/)
})

t.test('flagsToConfig maps each flag to its key', async (t) => {
  t.same(flagsToConfig({
    port: '1884', host: '127.0.0.1', wsPort: '8080', broker1: 'mqtt://a:1883', broker2: 'mqtt://b:1883',
    data: '/d', policy: ['sensors/#=queue', 'a=b/+=drop'], defaultPolicy: 'failover', httpPort: '9000', logLevel: 'debug'
  }), {
    listen: { port: 1884, host: '127.0.0.1', wsPort: 8080 },
    broker1: { url: 'mqtt://a:1883' },
    broker2: { url: 'mqtt://b:1883' },
    data: '/d',
    policies: [{ topic: 'sensors/#', mode: 'queue' }, { topic: 'a=b/+', mode: 'drop' }],
    defaultPolicy: 'failover',
    http: { port: 9000 },
    logLevel: 'debug'
  })
  t.same(flagsToConfig({}), {})
})

t.test('flagsToConfig maps the TLS, limit and embedded-broker flags', async (t) => {
  t.same(flagsToConfig({
    tlsPort: '8884', tlsCert: '/tls/cert.pem', tlsKey: '/tls/key.pem', tlsCa: '/tls/ca.pem', tlsRequestCert: true,
    maxConnections: '500', connectionRate: '50', maxPacketSize: '256KiB', maxInflight: '64', embeddedPorts: '2884,2885'
  }), {
    listen: { tls: { port: 8884, cert: '/tls/cert.pem', key: '/tls/key.pem', ca: '/tls/ca.pem', requestCert: true } },
    limits: { maxConnections: 500, connectionRatePerSecond: 50, maxPacketSize: '256KiB', maxInflight: 64 },
    embeddedPorts: [2884, 2885]
  })
  t.same(resolveConfig({ flags: { maxPacketSize: '256KiB' } }).limits.maxPacketSize, 256 * 1024, 'a size flag takes units')
  t.same(problems({ flags: { embeddedPorts: '2884' } }), ['--embedded-ports: "2884" is not two whole numbers A,B'])
  t.same(problems({ flags: { tlsCert: '/c.pem' } }), ['listen.tls.key: missing, expected a string'])
})

t.test('flagsToConfig refuses bad numbers and policies, naming the flag', async (t) => {
  let refused: string[] = []
  try {
    flagsToConfig({ port: '12ab', httpPort: '1.5', wsPort: '-1', policy: ['sensors/#', 'a/b=fast', 'ok=drop'] })
  } catch (err) {
    if (err instanceof ConfigError) refused = err.problems
  }
  t.same(refused, [
    '--port: "12ab" is not a whole number',
    '--ws-port: "-1" is not a whole number',
    '--http-port: "1.5" is not a whole number',
    '--policy: "sensors/#" is not FILTER=MODE, e.g. "sensors/#=queue"',
    '--policy: "a/b=fast" has an unknown mode "fast": expected one of "failover", "queue", "both", "drop"'
  ])
})

t.test('defaults apply when nothing is given', async (t) => {
  const config = resolveConfig({})
  t.same(config.listen, { port: 1883 }, 'the host depends on whether embedded brokers stand in (src/config/demo.ts)')
  t.equal(config.data, './data')
  t.equal(config.defaultPolicy, 'both')
  t.equal(config.logLevel, 'info')
  t.equal(config.broker1, undefined, 'no broker: the server starts embedded ones')
  t.equal(config.limits.receiveMaximum, 100)
  t.same(config.wills, { delaySeconds: 30 })
  t.same(config.sessions, { expirySeconds: 'never' })
  const brokers = resolveConfig({ flags: { broker1: 'mqtt://a', broker2: 'mqtt://b' } })
  t.equal(brokers.broker1?.protocolVersion, 'auto', 'MQTT 5 where the broker speaks it, 3.1.1 where it refuses')
})

t.test('the MQTT 5 terms of the upstream sessions: each bad value named', async (t) => {
  t.same(problems({ file: { limits: { receiveMaximum: 0 }, wills: { delaySeconds: -1 }, sessions: { expirySeconds: 0 } } }), [
    'limits.receiveMaximum: 0 is not valid: expected a number at least 1',
    'wills.delaySeconds: -1 is not valid: expected a number at least 0',
    'sessions.expirySeconds: 0 is not valid: expected a number at least 1'
  ])
  t.same(problems({ file: { limits: { receiveMaximum: 65536 }, wills: { delaySecond: 5 } } }), [
    'limits.receiveMaximum: 65536 is not valid: expected a number at most 65535',
    'wills.delaySecond: unknown key (did you mean "delaySeconds"?)'
  ])
  const config = resolveConfig({ file: { broker1: { url: 'mqtt://a', protocolVersion: 4 }, broker2: { url: 'mqtt://b', protocolVersion: 'auto' }, sessions: { expirySeconds: 3600 } } })
  t.equal(config.broker1?.protocolVersion, 4, '4 and 5 stay explicit choices')
  t.equal(config.sessions.expirySeconds, 3600)
})

t.test('demo mode: the embedded brokers follow the terminals\' port, and only loopback listens unless a host is given', async (t) => {
  const demo = (flags: CliFlags): { ports: [number, number], host: string } => {
    const config = resolveConfig({ flags })
    return { ports: embeddedPorts(config), host: listenHost(config) }
  }
  t.same(demo({}), { ports: [1884, 1885], host: '127.0.0.1' })
  t.same(demo({ port: '24883' }), { ports: [24884, 24885], host: '127.0.0.1' })
  t.same(demo({ port: '0' }), { ports: [0, 0], host: '127.0.0.1' }, 'port 0: any free ports')
  t.same(demo({ port: '65535' }), { ports: [0, 0], host: '127.0.0.1' }, 'no ports after 65535: any free ones')
  t.same(demo({ embeddedPorts: '3001,3002', host: '0.0.0.0' }), { ports: [3001, 3002], host: '0.0.0.0' })
  t.equal(listenHost(resolveConfig({ flags: { broker1: 'mqtt://a', broker2: 'mqtt://b' } })), '0.0.0.0', 'real brokers: all interfaces')
})

t.test('flags override the file, which overrides defaults', async (t) => {
  const config = resolveConfig({
    file: {
      listen: { port: 2000, host: '10.0.0.1' },
      broker1: { url: 'mqtt://file:1883', username: 'tier', password: 's3cret' },
      broker2: { url: 'mqtt://file2:1883' },
      policies: [{ topic: 'sensors/#', mode: 'drop' }],
      store: { maxBytes: '1MiB' },
      logLevel: 'warn'
    },
    flags: { port: '2001', broker1: 'mqtt://flag:1883', policy: ['sensors/#=queue'] }
  })
  t.same(config.listen, { host: '10.0.0.1', port: 2001 })
  t.match(config.broker1, { url: 'mqtt://flag:1883', username: 'tier', password: 's3cret' }, 'file broker1 keys survive --broker1')
  t.same(config.policies, [{ topic: 'sensors/#', mode: 'queue' }, { topic: 'sensors/#', mode: 'drop' }], 'flag policies come first')
  t.equal(config.store?.maxBytes, 2 ** 20)
  t.equal(config.logLevel, 'warn')
  t.equal(config.health.keepaliveSeconds, 1, 'defaults fill what neither sets')
})

t.test('a broker password may come from the environment', async (t) => {
  const env = { AEDES_DUAL_BROKER_BROKER1_PASSWORD: 'from-env', AEDES_DUAL_BROKER_BROKER2_PASSWORD: 'unused' }
  const config = resolveConfig({ file: { broker1: { url: 'mqtt://a', password: 'file' }, broker2: { url: 'mqtt://b' } }, env })
  t.equal(config.broker1?.password, 'from-env')
  t.equal(config.broker2?.password, 'unused')
  t.equal(resolveConfig({ env }).broker1, undefined, 'no broker is made up for a lone password')
})

t.test('every problem is reported in one run, one line each, naming the key', async (t) => {
  t.same(problems({
    file: {
      stor: {},
      store: { maxBytes: 'lots', fsync: 'sometimes' },
      listen: { port: 70000, hots: '::' },
      broker1: { url: 'htp://x', password: 5 },
      broker2: { url: 'mqtt://b', protocolVersion: 3, rejectUnauthorized: 'yes' },
      policies: [{ topic: 'a/#/b', mode: 'fail', ttl: 'soon', maxQos: 3 }],
      health: { keepaliveSeconds: 1.5 },
      logLevel: 'loud',
      port: 1883
    },
    flags: { httpPort: '12ab', wsPort: '99999' }
  }), [
    '--http-port: "12ab" is not a whole number',
    'broker1.url: "htp://x" is not a broker URL like "mqtt://127.0.0.1:1883"',
    'broker1.password: "***" is not valid: expected a string',
    'broker2.protocolVersion: 3 is not valid: expected 4 (MQTT 3.1.1), 5 or "auto"',
    'broker2.rejectUnauthorized: "yes" is not valid: expected true or false',
    'health.keepaliveSeconds: 1.5 is not valid: expected an integer',
    'policies[0].topic: "a/#/b" is not a valid MQTT topic filter',
    'policies[0].mode: "fail" is not valid: expected one of "failover", "queue", "both", "drop"',
    'policies[0].ttl: "soon" is not a duration like "30s" or "10m"',
    'policies[0].maxQos: 3 is not valid: expected 0, 1 or 2',
    'store.fsync: "sometimes" is not valid: expected one of "always", "batch", "never"',
    'store.maxBytes: "lots" is not a size like "512MiB"',
    'listen.port: 70000 is not valid: expected an integer from 0 to 65535',
    'listen.wsPort: 99999 is not valid: expected an integer from 0 to 65535 (from --ws-port)',
    'listen.hots: unknown key (did you mean "host"?)',
    'logLevel: "loud" is not valid: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    'stor: unknown key (did you mean "store"?)',
    'port: unknown key (did you mean "listen.port"?)'
  ])
})

t.test('messages for missing, mistyped and unknown keys', async (t) => {
  t.same(problems({ file: { broker1: { username: 'x' }, broker2: { url: 'mqtt://b' } } }), ['broker1.url: missing, expected a broker URL like "mqtt://127.0.0.1:1883"'])
  t.same(problems({ flags: { broker1: 'mqtt://a' } }), ['broker2: missing, needed because broker1 is set (set neither to use two embedded brokers)'])
  t.same(problems({ file: { broker1: { url: 1883 }, broker2: { url: 'mqtt://b' } } }), ['broker1.url: 1883 is not valid: expected a broker URL like "mqtt://127.0.0.1:1883"'])
  t.same(problems({ file: { replay: 'fast' } }), ['replay: "fast" is not valid: expected a mapping of keys'])
  t.same(problems({ file: ['a'] }), ['(config): ["a"] is not valid: expected a mapping of keys'])
  t.same(problems({ file: { store: { maxMessages: 0, maxBytes: -1 } } }), [
    'store.maxMessages: 0 is not valid: expected a number above 0',
    'store.maxBytes: -1 is not valid: expected a number at least 0'
  ])
  t.same(problems({ file: { listen: { ws_port: 1 } } }), ['listen.ws_port: unknown key (did you mean "wsPort"?)'])
  t.same(problems({ file: { broker1: { url: 'mqtt://a' }, broker2: { ulr: 'mqtt://b' } } }), [
    'broker2.url: missing, expected a broker URL like "mqtt://127.0.0.1:1883"',
    'broker2.ulr: unknown key (did you mean "url"?)'
  ], 'two swapped letters are one edit')
  t.same(problems({ file: { zzz: 1 } }), ['zzz: unknown key'], 'no hint when nothing is close')
  t.same(problems({ flags: { defaultPolicy: 'sometimes' } }),
    ['defaultPolicy: "sometimes" is not valid: expected one of "failover", "queue", "both", "drop" (from --default-policy)'])
  t.same(problems({ flags: { policy: ['a/#/b=drop'] } }), ['policies[0].topic: "a/#/b" is not a valid MQTT topic filter (from --policy)'])
})

t.test('maskSecrets hides secrets and URL passwords, keeps file paths', async (t) => {
  const config = {
    broker1: { url: 'mqtts://tier:pw@b1:8883', username: 'tier', password: 'hunter2', key: '/etc/tls/key.pem', cert: '/etc/tls/cert.pem' },
    nested: [{ token: 't', secret: 's', passphrase: 'p', other: 'visible' }],
    port: 1883
  }
  const masked = maskSecrets(config)
  t.same(masked, {
    broker1: { url: 'mqtts://tier:***@b1:8883', username: 'tier', password: '***', key: '/etc/tls/key.pem', cert: '/etc/tls/cert.pem' },
    nested: [{ token: '***', secret: '***', passphrase: '***', other: 'visible' }],
    port: 1883
  })
  t.equal(config.broker1.password, 'hunter2', 'the original is untouched')
  t.equal(redactText('auth failed for hunter2 at mqtt://u:pw@h', config), 'auth failed for *** at mqtt://u:***@h')
})
