/**
 * A broker build of your own, from the parts the package exports: your Aedes
 * and listener, the tier, the operations plugins registered on it, and a
 * plugin of your own. `tier.close()` closes the plugins, last registered
 * first, then the tier.
 *
 *   BROKER1=mqtt://10.0.0.1:1883 BROKER2=mqtt://10.0.0.2:1883 node --import tsx examples/custom-broker-build.ts
 */
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { pino } from 'pino'
import { type DualBroker, dualBroker, DualBrokerError, tierPlugin } from 'aedes-dual-broker'
import { status } from 'aedes-dual-broker/plugins/status'
import { sysTopics } from 'aedes-dual-broker/plugins/sys-topics'

const logger = pino()
const aedes = await Aedes.createBroker()

/** Yours: a log line per failover with the depth of the store, registered like the tier's own plugins. */
const outageLog = tierPlugin('outage-log', (tier: DualBroker, { every }: { every: number }) => {
  const onFailover = ({ reason }: { reason: string }): void => logger.warn({ reason }, 'Broker1 lost')
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
    broker1: { url: process.env.BROKER1 ?? 'mqtt://127.0.0.1:1884' },
    broker2: { url: process.env.BROKER2 ?? 'mqtt://127.0.0.1:1885' },
    store: { path: './data/pending' },
    policies: [{ topic: 'alarms/#', mode: 'both' }, { topic: 'telemetry/#', mode: 'queue', ttl: '1h' }],
    logger
  })
  await tier.register(sysTopics)
  const http = await tier.register(status, { port: 8080 })
  await tier.register(outageLog, { every: 10_000 })

  const server = createServer(aedes.handle).listen(1883, () => logger.info({ mqtt: 1883, status: http.url }, 'broker ready'))
  process.once('SIGTERM', () => {
    server.close()
    void tier.drain(5000).then(() => tier.close()).then(() => aedes.close())
  })
} catch (err) {
  // Coded errors: DUALBROKER_ERR_CONFIG names each bad key, DUALBROKER_ERR_STORE_OPEN the store, …
  if (err instanceof DualBrokerError) logger.fatal({ code: err.code }, err.message)
  process.exit(err instanceof DualBrokerError && err.code === 'DUALBROKER_ERR_CONFIG' ? 2 : 1)
}
