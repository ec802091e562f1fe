/** A server-sent events client for tests: each `data:` message parsed as JSON, awaited by predicate. */
import type { Test } from 'tap'

export interface EventStream<T> {
  readonly received: T[]
  /** The first message (already received or future) that `match` accepts. */
  next: (match: (message: T) => boolean, timeoutMs?: number) => Promise<T>
}

export async function followEvents<T> (t: Test, url: string): Promise<EventStream<T>> {
  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const res = await fetch(url, { signal: abort.signal })
  if (res.status !== 200 || res.body === null) throw new Error(`${url}: HTTP ${res.status}`)
  const received: T[] = []
  const waiters = new Set<() => void>()
  void (async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n')
          if (data !== '') received.push(JSON.parse(data) as T)
        }
        for (const check of [...waiters]) check()
      }
    } catch {} // aborted at teardown
  })()
  return {
    received,
    next (match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = received.find(match)
          if (found === undefined) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(found)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no matching event within ${timeoutMs} ms (${received.length} received)`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    }
  }
}
