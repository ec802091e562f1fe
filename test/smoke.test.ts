import t from 'tap'
import * as api from '../src/index.js'

// The public entry point loads on its own and exports what README documents.
t.test('the package entry exports the documented API', async (t) => {
  t.type(api.dualBroker, 'function')
  t.type(api.createAccessTier, 'function')
  t.type(api.ConfigError, 'function')
  t.equal(api.LOCAL_TOPIC_PREFIX, '$SYS/dual-broker/')
})
