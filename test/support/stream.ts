import type { MqttClient } from 'mqtt'

export interface StreamOptions {
  topic: string
  count: number
  qos?: 0 | 1 | 2
  /** Unacknowledged publishes allowed at once. */
  window?: number
  /** Messages per second; 0 = as fast as the window allows. */
  rate?: number
  /** Called after each ack with the number acked so far. */
  onAck?: (acked: number) => void
  /** Asked before each publish: true ends the stream early (the result counts what was sent). */
  stop?: () => boolean
}

export interface StreamResult {
  /** Sequence numbers whose PUBACK the publisher received. */
  acked: number[]
  failed: number
}

/**
 * Publishes payloads `{"seq":N}` for N = 0..count-1 with a window of unacked
 * messages, as a real QoS 1 terminal would, and records what was acked.
 */
export function publishStream (client: MqttClient, opts: StreamOptions): Promise<StreamResult> {
  const { topic, qos = 1, window = 100, rate = 0, onAck, stop } = opts
  let count = opts.count
  const acked: number[] = []
  let failed = 0
  let next = 0
  let inflight = 0
  const started = Date.now()
  return new Promise((resolve) => {
    const pump = (): void => {
      if (stop?.() === true && count > next) {
        count = next
        if (acked.length + failed === count) resolve({ acked, failed })
      }
      while (inflight < window && next < count) {
        if (rate > 0 && next >= ((Date.now() - started) / 1000) * rate) {
          setTimeout(pump, 5)
          return
        }
        const seq = next++
        inflight++
        client.publish(topic, JSON.stringify({ seq }), { qos }, (error) => {
          inflight--
          if (error == null) acked.push(seq)
          else failed++
          onAck?.(acked.length)
          if (acked.length + failed === count) resolve({ acked, failed })
          else pump()
        })
      }
    }
    pump()
  })
}
