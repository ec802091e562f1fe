import net from 'node:net'

/**
 * Ask the kernel for a free loopback port, then release it. Needed because
 * mosquitto cannot listen on port 0, and a killed broker must come back on
 * the very same port. There is a small race until the caller binds it.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        server.close()
        reject(new Error('unexpected server address'))
        return
      }
      const { port } = address
      server.close(err => (err ? reject(err) : resolve(port)))
    })
  })
}
