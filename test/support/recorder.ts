import type { IClientOptions, IClientSubscribeOptions } from 'mqtt'
import type { Test } from 'tap'
import { connectClient } from './client.js'
import { parseSeq } from './sequence.js'

export interface RecordedMessage {
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
}

export interface RecordOptions
  extends Pick<IClientOptions, 'clientId' | 'username' | 'password' | 'reconnectPeriod' | 'clean' | 'protocolVersion' | 'keepalive'> {
  qos?: IClientSubscribeOptions['qos']
}

export interface Recorder {
  readonly messages: RecordedMessage[]
  /** Resolves once at least `count` messages arrived in total. */
  waitFor(count: number, timeoutMs?: number): Promise<void>
  /** Resolves with the first message (already recorded or future) matching `topic`, wildcards allowed. */
  waitForTopic(topic: string, timeoutMs?: number): Promise<RecordedMessage>
  /** Sequence numbers of payloads on topics starting with `topicPrefix`, in arrival order. */
  sequences(topicPrefix?: string): number[]
  close(): Promise<void>
}

/** MQTT topic filter match, so waitForTopic accepts the same filters as SUBSCRIBE. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const n = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= n.length || (f[i] !== '+' && f[i] !== n[i])) return false
  }
  return f.length === n.length
}

/** Subscribe to `topic` on any broker and record what it delivers. Resolves after SUBACK. */
export async function record(t: Test, url: string, topic = '#', opts: RecordOptions = {}): Promise<Recorder> {
  const { qos = 1, ...mqttOpts } = opts
  const client = await connectClient(t, url, { clean: true, ...mqttOpts })
  const messages: RecordedMessage[] = []
  const waiters = new Set<() => void>()

  client.on('message', (msgTopic, payload, packet) => {
    messages.push({ topic: msgTopic, payload, qos: packet.qos, retain: packet.retain })
    for (const check of [...waiters]) check()
  })
  // mqtt.js rejects this on a SUBACK failure code (0x80 and up).
  await client.subscribeAsync(topic, { qos })

  // Re-checks `ready` on every message instead of polling with sleeps.
  function until<T>(ready: () => T | undefined, timeoutMs: number, why: () => string): Promise<T> {
    const now = ready()
    if (now !== undefined) return Promise.resolve(now)
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      const check = (): void => {
        const value = ready()
        if (value !== undefined) {
          done()
          resolve(value)
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(why()))
      }, timeoutMs)
      waiters.add(check)
    })
  }

  return {
    messages,
    async waitFor(count, timeoutMs = 5000) {
      await until(
        () => (messages.length >= count ? true : undefined),
        timeoutMs,
        () => `waitFor(${count}): only ${messages.length} message(s) arrived on ${topic} within ${timeoutMs} ms`,
      )
    },
    waitForTopic(wanted, timeoutMs = 5000) {
      // Scans each message once: re-scanning a large recording on every arrival is quadratic.
      let scanned = 0
      return until(
        () => {
          for (; scanned < messages.length; scanned++) if (topicMatches(wanted, messages[scanned]!.topic)) return messages[scanned]
          return undefined
        },
        timeoutMs,
        () => `waitForTopic(${wanted}): nothing within ${timeoutMs} ms (${messages.length} other message(s))`,
      )
    },
    sequences(topicPrefix = '') {
      const out: number[] = []
      for (const m of messages) {
        if (!m.topic.startsWith(topicPrefix)) continue
        const seq = parseSeq(m.payload)
        if (seq !== undefined) out.push(seq)
      }
      return out
    },
    async close() {
      // Forced: a graceful end waits for the peer's FIN, which a SIGSTOPped broker never sends.
      await client.endAsync(true)
    },
  }
}
