import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Aedes, type AedesOptions, type Client } from 'aedes'
import type { Test } from 'tap'

export interface AedesBrokerOptions {
  /** Fixed port; default an ephemeral one (kept across restart). */
  port?: number
  /** Passed to Aedes.createBroker on every (re)start, e.g. authenticate hooks. */
  aedes?: AedesOptions
}

export interface AedesBroker {
  /** The current instance (a new one after restart). */
  readonly aedes: Aedes
  readonly port: number
  readonly url: string
  /** Clients connected right now (CONNACK sent, not yet gone). */
  connections(): number
  /** Successful connects since start, across restarts. */
  connectsTotal(): number
  clientIds(): string[]
  /** Closes the listener, destroys open sockets, closes Aedes. Idempotent. */
  close(): Promise<void>
  /** Same port, fresh Aedes with the same options. */
  restart(): Promise<void>
}

interface Running {
  aedes: Aedes
  server: net.Server
  sockets: Set<net.Socket>
}

export async function startAedes(t: Test, opts: AedesBrokerOptions = {}): Promise<AedesBroker> {
  let port = opts.port ?? 0
  // Client objects rather than ids: on a client-id takeover the new client's
  // 'client' event may precede the old one's 'clientDisconnect'.
  const clients = new Set<Client>()
  let total = 0
  let running: Running | undefined
  let aedes: Aedes | undefined

  const launch = async (): Promise<void> => {
    const instance = await Aedes.createBroker(opts.aedes)
    instance.on('client', client => {
      clients.add(client)
      total++
    })
    instance.on('clientDisconnect', client => clients.delete(client))
    const sockets = new Set<net.Socket>()
    const server = net.createServer(socket => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      instance.handle(socket)
    })
    port = await listen(server, port)
    aedes = instance
    running = { aedes: instance, server, sockets }
  }

  const close = async (): Promise<void> => {
    const r = running
    if (r === undefined) return
    running = undefined
    // server.close() alone waits for every open connection to end.
    const closed = new Promise<void>(resolve => r.server.close(() => resolve()))
    for (const socket of r.sockets) socket.destroy()
    await closed
    await new Promise<void>(resolve => r.aedes.close(() => resolve()))
    clients.clear()
  }

  t.teardown(close)
  await launch()

  return {
    get aedes() {
      if (aedes === undefined) throw new Error('aedes broker not started')
      return aedes
    },
    get port() {
      return port
    },
    get url() {
      return `mqtt://127.0.0.1:${port}`
    },
    connections: () => clients.size,
    connectsTotal: () => total,
    clientIds: () => [...clients].map(c => c.id),
    close,
    async restart() {
      await close()
      await launch()
    },
  }
}

/** Listen on 127.0.0.1:port, retrying briefly if a just-closed listener still holds it. */
async function listen(server: net.Server, port: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject)
          resolve()
        })
      })
      const address = server.address()
      if (address === null || typeof address === 'string') throw new Error('unexpected server address')
      return address.port
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw err
      await sleep(100)
    }
  }
}
