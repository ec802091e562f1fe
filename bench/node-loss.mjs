// The node-loss process: `n` persistent terminals (mqtt.js, clean: false, reconnect after
// 100 ms) through one address (haproxy), each publishing its own sequence at QoS 1 on its own
// topic and subscribed to it, plus an observer straight at Broker1. It records every PUBACK,
// every arrival, and each terminal's connection losses and CONNACKs, so the parent can time how
// long a node loss kept terminals away and count what went missing. Each terminal has a will: one
// published while every terminal came back is a false one (an operator told a device is gone).
import mqtt from 'mqtt'
import { serve } from './lib/procs.mjs'

let terminals = []
let observer
let atBroker1
let wills
let pump

function seqOf (payload) {
  return Number(payload.toString())
}

serve({
  async start ({ url, broker1, n, ratePerTerminal, prefix = 'nl' }) {
    atBroker1 = new Map()
    wills = 0
    observer = await mqtt.connectAsync(broker1, { clientId: `${prefix}-observer`, clean: true, reconnectPeriod: 0 })
    observer.on('message', (topic, payload) => {
      if (topic.startsWith(`${prefix}-will/`)) return void wills++
      if (!atBroker1.has(topic)) atBroker1.set(topic, new Set())
      atBroker1.get(topic).add(seqOf(payload))
    })
    await observer.subscribeAsync([`${prefix}/#`, `${prefix}-will/#`], { qos: 1 })
    terminals = await Promise.all(Array.from({ length: n }, async (_, i) => {
      const topic = `${prefix}/${i}`
      const will = { topic: `${prefix}-will/${i}`, payload: Buffer.from('gone'), qos: 1, retain: false }
      const client = await mqtt.connectAsync(url, { clientId: `${prefix}-${i}`, clean: false, reconnectPeriod: 100, keepalive: 30, will })
      const t = { topic, client, next: 0, inflight: 0, acked: [], received: new Set(), closes: [], connects: [] }
      client.on('error', () => {})
      client.on('close', () => t.closes.push(Date.now()))
      client.on('connect', (connack) => t.connects.push({ at: Date.now(), sessionPresent: connack.sessionPresent }))
      client.on('message', (_topic, payload) => t.received.add(seqOf(payload)))
      await client.subscribeAsync(topic, { qos: 1 })
      return t
    }))
    // Each terminal sends what is due at its rate, up to 20 unacknowledged (mqtt.js queues them while it reconnects).
    const started = Date.now()
    pump = setInterval(() => {
      const due = Math.floor(((Date.now() - started) / 1000) * ratePerTerminal)
      for (const t of terminals) {
        while (t.next < due && t.inflight < 20) {
          const seq = t.next++
          t.inflight++
          t.client.publish(t.topic, String(seq), { qos: 1 }, (err) => {
            t.inflight--
            if (err == null) t.acked.push(seq)
          })
        }
      }
    }, 5)
    return { terminals: terminals.length }
  },

  /** Stops publishing, waits (up to `settleMs`) for what was acked to arrive everywhere, and reports. */
  async stop ({ since, settleMs = 10_000 }) {
    clearInterval(pump)
    const until = Date.now() + settleMs
    const complete = () => terminals.every((t) => t.inflight === 0 && t.acked.every((seq) => t.received.has(seq) && atBroker1.get(t.topic)?.has(seq)))
    while (!complete() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50))
    let missingAtBroker1 = 0
    let missingAtTerminals = 0
    let acked = 0
    const moves = []
    for (const t of terminals) {
      acked += t.acked.length
      for (const seq of t.acked) {
        if (!atBroker1.get(t.topic)?.has(seq)) missingAtBroker1++
        if (!t.received.has(seq)) missingAtTerminals++
      }
      const lostAt = t.closes.find((at) => at >= since)
      if (lostAt === undefined) continue
      const back = t.connects.find((c) => c.at >= lostAt)
      moves.push({ backMs: back === undefined ? NaN : back.at - since, sessionPresent: back?.sessionPresent === true })
    }
    for (const t of terminals) t.client.end(true)
    observer.end(true)
    return {
      acked,
      missingAtBroker1,
      missingAtTerminals,
      moved: moves.length,
      allBackMs: moves.length === 0 ? NaN : Math.max(...moves.map((m) => m.backMs)),
      sessionsPresent: moves.filter((m) => m.sessionPresent).length,
      unsettled: terminals.reduce((sum, t) => sum + t.inflight, 0),
      falseWills: moves.every((m) => Number.isFinite(m.backMs)) ? wills : NaN
    }
  }
})
