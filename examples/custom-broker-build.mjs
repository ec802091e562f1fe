// @ts-check
/**
 * A broker build of your own, from the parts the package exports: your Aedes
 * and listener, the tier, the operations plugins registered on it, and a
 * plugin of your own. `tier.close()` closes the plugins, last registered
 * first, then the tier.
 *
 *   node node_modules/aedes-dual-broker/examples/custom-broker-build.mjs --broker1 mqtt://10.0.0.1:1883 --broker2 mqtt://10.0.0.2:1883
 *
 * Flags or environment: --broker1/BROKER1, --broker2/BROKER2, --port/PORT (MQTT, 1883),
 * --http-port/HTTP_PORT (the status server, 8080), --host/HOST (both listeners, 127.0.0.1),
 * --data/DATA (the data dir, ./data). Port 0 takes a free one; the `broker ready` line logs both.
 */
import { createServer } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'
import { pino } from 'pino'
import { dualBroker, DualBrokerError, tierPlugin } from 'aedes-dual-broker'
import { status } from 'aedes-dual-broker/plugins/status'
import { sysTopics } from 'aedes-dual-broker/plugins/sys-topics'

const { values: args } = parseArgs({
  options: {
    broker1: { type: 'string' },
    broker2: { type: 'string' },
    port: { type: 'string' },
    'http-port': { type: 'string' },
    host: { type: 'string' },
    data: { type: 'string' }
  }
})
const env = process.env
const host = args.host ?? env.HOST ?? '127.0.0.1'
const logger = pino()
const aedes = await Aedes.createBroker()

/** Yours: a log line per failover with the depth of the store, registered like the tier's own plugins. */
const outageLog = tierPlugin('outage-log', (tier, /** @type {{ every: number }} */ { every }) => {
  /** @param {{ reason: string }} event */
  const onFailover = ({ reason }) => logger.warn({ reason }, 'Broker1 lost')
  const timer = setInterval(() => {
    if (tier.state.mode !== 'normal') logger.info({ pending: tier.state.pending }, 'still in failover')
  }, every)
  tier.on('failover', onFailover)
  return {
    close () {
      clearInterval(timer)
      tier.off('failover', onFailover)
    }
  }
})

try {
  const tier = await dualBroker(aedes, {
    broker1: { url: args.broker1 ?? env.BROKER1 ?? 'mqtt://127.0.0.1:1884' },
    broker2: { url: args.broker2 ?? env.BROKER2 ?? 'mqtt://127.0.0.1:1885' },
    store: { path: join(args.data ?? env.DATA ?? './data', 'pending') },
    policies: [{ topic: 'alarms/#', mode: 'both' }, { topic: 'telemetry/#', mode: 'queue', ttl: '1h' }],
    logger
  })
  await tier.register(sysTopics)
  const http = await tier.register(status, { host, port: Number(args['http-port'] ?? env.HTTP_PORT ?? 8080) })
  await tier.register(outageLog, { every: 10_000 })

  const server = createServer(aedes.handle).listen(Number(args.port ?? env.PORT ?? 1883), host, () => {
    const { port } = /** @type {import('node:net').AddressInfo} */ (server.address())
    logger.info({ mqtt: { host, port }, status: http.url }, 'broker ready')
  })
  process.once('SIGTERM', () => {
    server.close()
    void tier.drain(5000).then(() => tier.close()).then(() => aedes.close())
  })
} catch (err) {
  // Coded errors: DUALBROKER_ERR_CONFIG names each bad key, DUALBROKER_ERR_STORE_OPEN the store, …
  if (err instanceof DualBrokerError) logger.fatal({ code: err.code }, err.message)
  else logger.fatal({ err }, 'cannot start')
  process.exit(err instanceof DualBrokerError && err.code === 'DUALBROKER_ERR_CONFIG' ? 2 : 1)
}
