import t from 'tap'
import * as api from '../src/index.js'
import * as server from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'

// The entries load on their own; the plugin entry does not carry the server (README "Embedding").
t.test('the package entries export the documented API, the plugin entry without the server', async (t) => {
  t.same(Object.keys(api).sort(), [
    'ConfigError', 'ConnectRefusedError', 'DualBroker', 'DualBrokerError', 'ERROR_CODES', 'LOCAL_TOPIC_PREFIX',
    'MemoryPendingStore', 'StoreClosedError', 'StoreFullError', 'dualBroker', 'tierPlugin'
  ])
  t.same(Object.keys(server).sort(), ['createAccessTier'])
  t.equal(api.LOCAL_TOPIC_PREFIX, '$SYS/dual-broker/')
  for (const code of Object.keys(api.ERROR_CODES)) t.match(code, /^DUALBROKER_ERR_[A-Z_]+$/, `${code} is a coded error`)
})

t.test('a bad option is a coded ConfigError that names the key', async (t) => {
  const { Aedes } = await import('aedes')
  const aedes = await Aedes.createBroker()
  t.teardown(() => new Promise<void>((resolve) => aedes.close(() => resolve())))
  const broker = await startAedes(t)
  const error = await api.dualBroker(aedes, { broker1: { url: 'htp://nope' }, broker2: { url: broker.url } }).catch((err: unknown) => err)
  t.type(error, api.ConfigError)
  t.type(error, api.DualBrokerError)
  t.equal((error as api.ConfigError).code, 'DUALBROKER_ERR_CONFIG')
  t.match((error as api.ConfigError).problems, [/^broker1\.url: /])
})
