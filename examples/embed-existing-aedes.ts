/**
 * Adding the access tier to an Aedes deployment you already run: your own
 * authenticate hook stays in force and runs first; only terminals it allows
 * are opened at Broker1 and Broker2.
 *
 *   BROKER1=mqtt://10.0.0.1:1883 BROKER2=mqtt://10.0.0.2:1883 node --import tsx examples/embed-existing-aedes.ts
 */
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { pino } from 'pino'
import { dualBroker } from 'aedes-dual-broker'

const logger = pino()
const allowed = new Set(['sensor-1', 'sensor-2'])

const aedes = await Aedes.createBroker({
  authenticate (client, _username, _password, done) {
    // Your own rule: only known devices. The brokers still check the credentials themselves.
    done(null, allowed.has(client.id))
  }
})

const tier = await dualBroker(aedes, {
  broker1: { url: process.env.BROKER1 ?? 'mqtt://127.0.0.1:1884' },
  broker2: { url: process.env.BROKER2 ?? 'mqtt://127.0.0.1:1885' },
  logger
})
tier.on('broker-down', ({ broker, reason }) => logger.warn({ broker, reason }, 'upstream lost'))

const server = createServer(aedes.handle)
server.listen(1883, () => logger.info({ port: 1883, state: tier.state }, 'access tier ready'))

process.once('SIGTERM', () => {
  server.close()
  void tier.close().then(() => aedes.close())
})
