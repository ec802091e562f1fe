import net from 'node:net'
import type { Test } from 'tap'

export interface Relay {
  url: string
  /** Stops forwarding in both directions without closing anything: a cut cable, as TCP sees it. */
  cut: () => void
  /** Forwards again what was held and what comes next. */
  mend: () => void
  close: () => Promise<void>
}

/** Sees every chunk of one relayed connection before it is forwarded (`fromClient`: towards the broker). */
export type ChunkInspector = (fromClient: boolean, chunk: Buffer) => void

/**
 * A TCP relay on 127.0.0.1 in front of `target`, that can go silent on command;
 * `inspect` makes an inspector per connection.
 */
export async function startRelay (t: Test, targetPort: number, inspect?: () => ChunkInspector): Promise<Relay> {
  let silent = false
  const pipes = new Set<{ from: net.Socket, to: net.Socket }>()
  const sockets = new Set<net.Socket>()
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, '127.0.0.1')
    for (const socket of [inbound, outbound]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => { sockets.delete(socket); inbound.destroy(); outbound.destroy() })
    }
    const inspector = inspect?.()
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
      // Added before the pipe's own listener: a chunk is inspected before the other side can see it.
      if (inspector !== undefined) from.on('data', (chunk: Buffer) => inspector(from === inbound, chunk))
      pipes.add({ from, to })
      from.pipe(to)
      if (silent) from.unpipe(to)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const close = async (): Promise<void> => {
    const closed = new Promise((resolve) => server.close(resolve))
    for (const socket of sockets) socket.destroy()
    await closed
  }
  t.teardown(close)
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut: () => {
      silent = true
      for (const { from, to } of pipes) { from.unpipe(to); from.pause() }
    },
    mend: () => {
      silent = false
      for (const { from, to } of pipes) if (!from.destroyed) from.pipe(to)
    },
    close
  }
}
