import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { freePort } from './ports.js'

export interface RedisServer {
  port: number
  host: string
  /** Kills it and resolves once it exited: register it as a teardown after whatever uses the server. */
  stop: () => Promise<void>
}

const live = new Set<ChildProcess>()
process.once('exit', () => { for (const child of live) child.kill('SIGKILL') })

/** A real redis-server on loopback, without persistence. */
export async function startRedis (): Promise<RedisServer> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => { live.delete(child); resolve() }))
  const stop = async (): Promise<void> => {
    child.kill('SIGKILL')
    await exited
  }
  await new Promise<void>((resolve, reject) => {
    const lines: string[] = []
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line)
      if (line.includes('Ready to accept connections')) resolve()
    })
    child.once('error', reject)
    void exited.then(() => reject(new Error(`redis-server exited: ${lines.slice(-5).join('\n')}`)))
  })
  return { port, host: '127.0.0.1', stop }
}
