/**
 * The tier's HTTP face for operators (README "Operating it"): `GET /health` for load
 * balancers and supervisors, `GET /metrics` for Prometheus, `GET /` a live
 * status page fed by server-sent events from `GET /events`. node:http only.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type DualBroker, tierPlugin } from '../../src/index.js'
import { metricsPlugin, type MetricsPlugin, type ObservedTier } from '../metrics.js'
import { isAvailable, StatusFeed, type StatusSnapshot } from './feed.js'
import { statusPage } from './page.js'

export type { StatusSnapshot, ObservedTier }

export interface StatusServerOptions {
  /** Default 127.0.0.1: the page and metrics are for the operator's network, not the terminals'. */
  host?: string
  /** Default 0: an ephemeral port (see `address`). */
  port?: number
  /** Serve these metrics at `/metrics`; default a `metricsPlugin(tier)` of the server's own. */
  metrics?: MetricsPlugin
  /** How often `/events` sends a snapshot and the pending depth is sampled; default 1000 ms. */
  tickMs?: number
}

export interface StatusServer {
  readonly address: { host: string, port: number }
  readonly url: string
  /**
   * The node is going away: from now on `/health` answers 503 with status `stopping`, so that a
   * load balancer stops sending it terminals while it still serves those it has. Not undone.
   */
  stopping: () => void
  /** Ends the event streams, closes the listener and detaches from the tier. */
  close: () => Promise<void>
}

export async function statusServer (tier: ObservedTier, options: StatusServerOptions = {}): Promise<StatusServer> {
  const { host = '127.0.0.1', port = 0, tickMs = 1000 } = options
  const ownMetrics = options.metrics === undefined
  const metrics = options.metrics ?? metricsPlugin(tier)
  const streams = new Set<ServerResponse>()
  const send = (res: ServerResponse, snapshot: StatusSnapshot): void => { res.write(`data: ${JSON.stringify(snapshot)}\n\n`) }
  const broadcast = (): void => {
    if (streams.size === 0) return
    const snapshot = feed.snapshot()
    for (const res of streams) send(res, snapshot)
  }
  // Several events in one turn (a broker down, then the failover) make one snapshot.
  let queued = false
  const feed = new StatusFeed(tier, () => {
    if (queued) return
    queued = true
    setImmediate(() => { queued = false; broadcast() })
  })
  const ticker = setInterval(() => { feed.sample(); broadcast() }, tickMs)
  let stopping = false

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void | Promise<void>> = {
    '/health': (_req, res) => {
      const { mode, brokers, clients, pending, store, sessionsLost, node } = tier.state
      const status = stopping ? 'stopping' : isAvailable({ brokers }) ? 'ok' : 'unavailable'
      // A store that refuses writes, or a broker (the standby) that lost sessions, keeps the node up but is said, for alerting.
      reply(res, status === 'ok' ? 200 : 503, 'application/json', JSON.stringify({ status, mode, brokers, pending, store, clients, sessionsLost, node }))
    },
    '/metrics': async (_req, res) => reply(res, 200, metrics.contentType, await metrics.metrics()),
    '/': (_req, res) => reply(res, 200, 'text/html; charset=utf-8', statusPage(feed.snapshot(true))),
    '/events': (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
      if (req.method === 'HEAD') return void res.end()
      res.write('retry: 1000\n\n')
      send(res, feed.snapshot(true))
      streams.add(res)
      req.once('close', () => streams.delete(res))
    }
  }

  const server = createServer((req, res) => {
    const route = routes[new URL(req.url ?? '/', 'http://status').pathname]
    if (route === undefined) return reply(res, 404, 'text/plain', 'not found\n')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return reply(res, 405, 'text/plain', 'method not allowed\n')
    }
    Promise.resolve(route(req, res)).catch((err: unknown) => reply(res, 500, 'text/plain', `${String(err)}\n`))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const bound = server.address() as AddressInfo
  const address = { host: bound.address, port: bound.port }

  let closing: Promise<void> | undefined
  return {
    address,
    url: `http://${bound.family === 'IPv6' ? `[${address.host}]` : address.host}:${address.port}`,
    stopping: () => { stopping = true },
    close () {
      closing ??= (async () => {
        clearInterval(ticker)
        feed.close()
        if (ownMetrics) metrics.close()
        for (const res of streams) res.end()
        streams.clear()
        const closed = new Promise((resolve) => server.close(resolve))
        server.closeAllConnections() // keep-alive sockets would hold close() open
        await closed
      })()
      return closing
    }
  }
}

function reply (res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
  res.end(body) // node leaves the body out for HEAD
}

/** `await tier.register(status, options)`: the same server, closed with the tier. */
export const status = tierPlugin('status', (tier: DualBroker, options: StatusServerOptions | undefined) => statusServer(tier, options))
