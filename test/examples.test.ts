import t from 'tap'
import { fileURLToPath } from 'node:url'
import { loadConfigFile, resolveConfig } from '../src/config/load.js'

const example = (name: string): string => fileURLToPath(new URL(`../examples/${name}`, import.meta.url))

t.test('the example config files are valid configurations', async (t) => {
  for (const name of ['standalone.yaml', 'policies.yaml']) {
    const config = resolveConfig({ file: loadConfigFile(example(name)) })
    t.match(config.broker1?.url, /^mqtt:\/\//, `${name} names Broker1`)
  }
})
