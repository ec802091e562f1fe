// @ts-check
/**
 * Adding the access tier to an Aedes deployment you already run: your own
 * authenticate hook stays in force and runs first; only terminals it allows
 * are opened at Broker1 and Broker2.
 *
 *   node node_modules/aedes-dual-broker/examples/embed-existing-aedes.mjs --broker1 mqtt://10.0.0.1:1883 --broker2 mqtt://10.0.0.2:1883
 *
 * Flags or environment: --broker1/BROKER1, --broker2/BROKER2, --port/PORT (1883; 0 takes a free
 * one, logged), --host/HOST (127.0.0.1; 0.0.0.0 opens it to the network).
 */
import { createServer } from 'node:net'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'
import { pino } from 'pino'
import { dualBroker } from 'aedes-dual-broker'

const { values: args } = parseArgs({
  options: { broker1: { type: 'string' }, broker2: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } }
})
const env = process.env
const logger = pino()
const allowed = new Set(['sensor-1', 'sensor-2'])

const aedes = await Aedes.createBroker({
  authenticate (client, _username, _password, done) {
    // Your own rule: only known devices. The brokers still check the credentials themselves.
    done(null, allowed.has(client.id))
  }
})

const tier = await dualBroker(aedes, {
  broker1: { url: args.broker1 ?? env.BROKER1 ?? 'mqtt://127.0.0.1:1884' },
  broker2: { url: args.broker2 ?? env.BROKER2 ?? 'mqtt://127.0.0.1:1885' },
  logger
})
tier.on('broker-down', ({ broker, reason }) => logger.warn({ broker, reason }, 'upstream lost'))

const server = createServer(aedes.handle)
server.listen(Number(args.port ?? env.PORT ?? 1883), args.host ?? env.HOST ?? '127.0.0.1', () => {
  const { address, port } = /** @type {import('node:net').AddressInfo} */ (server.address())
  logger.info({ mqtt: { host: address, port }, state: tier.state.mode }, 'access tier ready')
})

process.once('SIGTERM', () => {
  server.close()
  void tier.close().then(() => aedes.close())
})
