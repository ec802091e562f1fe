// The subscriber process: one or more labelled MQTT connections (e.g. "sub"
// through the tier, or observers "b1"/"b2" straight at each broker), each
// subscribed to the benchmark topic. Per connection and per reconnection
// ("epoch") it counts arrivals, duplicates and order violations by sequence
// number, keeps first/last arrival times on the shared monotonic clock, and
// records end-to-end latency (payload send time → arrival) in an HDR histogram.
import { setTimeout as sleep } from 'node:timers/promises'
import hdr from 'hdr-histogram-js'
import { LeanClient, readSentNs, readSeq } from './lib/mqtt-lean.mjs'
import { mono, serve } from './lib/procs.mjs'

const links = new Map()
let window = { from: -Infinity, to: Infinity }
let histogram = newHistogram()
// A second latency window, for the first seconds after the tier starts (JIT and heap still warming).
let early = { from: Infinity, to: -Infinity }
let earlyHistogram = newHistogram()

function newHistogram () {
  // Microseconds, 1 µs .. 60 s, 3 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

function newEpoch (n) {
  return {
    epoch: n, connectedAt: mono(), received: 0, unique: 0, duplicates: 0, orderViolations: 0,
    maxSeq: -1, firstAt: undefined, lastAt: undefined, firstSeq: undefined, lastSeq: undefined,
    inWindow: 0, seen: new Uint8Array(1 << 16)
  }
}

function onMessage (link, packet) {
  const nowNs = process.hrtime.bigint()
  const now = Number(nowNs) / 1e6
  const payload = packet.payload
  const seq = readSeq(payload)
  const e = link.current
  e.received++
  if (e.firstAt === undefined) { e.firstAt = now; e.firstSeq = seq }
  e.lastAt = now
  e.lastSeq = seq
  if (seq >= e.seen.length) {
    const bigger = new Uint8Array(Math.max(seq + 1, e.seen.length * 2))
    bigger.set(e.seen)
    e.seen = bigger
  }
  if (e.seen[seq] === 1) {
    e.duplicates++
  } else {
    e.seen[seq] = 1
    e.unique++
    if (seq < e.maxSeq) e.orderViolations++
  }
  if (seq > e.maxSeq) e.maxSeq = seq
  if (now >= window.from && now <= window.to) {
    e.inWindow++
    if (link.latency) histogram.recordValue(microsSince(payload, nowNs))
  }
  if (link.latency && now >= early.from && now <= early.to) earlyHistogram.recordValue(microsSince(payload, nowNs))
}

function microsSince (payload, nowNs) {
  return Math.max(1, Math.round(Number(nowNs - readSentNs(payload)) / 1000))
}

async function open (link) {
  for (;;) {
    const client = new LeanClient({ url: link.url, clientId: link.clientId, clean: link.clean, keepalive: link.keepalive, protocolVersion: link.protocolVersion })
    try {
      const code = await client.connect()
      if (code !== 0) throw new Error(`CONNACK ${code}`)
      link.epochs.push(link.current = newEpoch(link.epochs.length + 1))
      client.on('message', (packet) => onMessage(link, packet))
      await client.subscribe(link.topic, link.qos)
      link.client = client
      client.on('close', () => {
        if (link.client !== client) return
        link.client = undefined
        if (link.reconnect && !link.closed) void open(link)
      })
      return
    } catch (err) {
      client.destroy()
      if (!link.reconnect || link.closed) throw err
      await sleep(50)
    }
  }
}

function summary (e, withSeen) {
  const { seen, ...rest } = e
  return withSeen ? { ...rest, seen: seen.subarray(0, e.maxSeq + 1) } : rest
}

function percentiles (h) {
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50) / 1000,
    p90: h.getValueAtPercentile(90) / 1000,
    p99: h.getValueAtPercentile(99) / 1000,
    p999: h.getValueAtPercentile(99.9) / 1000,
    max: h.maxValue / 1000,
    mean: h.mean / 1000
  }
}

serve({
  /** Opens a labelled connection and subscribes; with `reconnect` it comes back by itself after a broker restart. */
  async connect ({ label, url, clientId, topic, qos = 1, reconnect = false, latency = false, keepalive = 60, clean = true, protocolVersion = 4 }) {
    const link = { label, url, clientId: clientId ?? `bench-sub-${label}-${process.pid}`, topic, qos, reconnect, latency, keepalive, clean, protocolVersion, epochs: [], current: undefined, closed: false }
    links.set(label, link)
    await open(link)
    return { ok: true }
  },

  /**
   * Arrivals within [from, to] (monotonic ms) count as "in window"; latency is recorded only there,
   * and, reported apart as `latencyEarly`, within `early` ({ from, to }) when given.
   */
  window ({ from, to, early: earlyWindow }) {
    window = { from, to }
    histogram = newHistogram()
    early = earlyWindow ?? { from: Infinity, to: -Infinity }
    earlyHistogram = newHistogram()
    for (const link of links.values()) for (const e of link.epochs) e.inWindow = 0
    return true
  },

  /** Resolves once `label` has `count` unique messages (all epochs together), or after timeoutMs. */
  async waitFor ({ label, count, timeoutMs = 60_000, quietMs = 0 }) {
    const deadline = Date.now() + timeoutMs
    const link = links.get(label)
    for (;;) {
      const unique = link.epochs.reduce((n, e) => n + e.unique, 0)
      if (unique >= count) return { ok: true, unique }
      const last = link.current?.lastAt ?? -Infinity
      if (quietMs > 0 && unique > 0 && mono() - last > quietMs) return { ok: false, unique, quiet: true }
      if (Date.now() > deadline) return { ok: false, unique }
      await sleep(20)
    }
  },

  report ({ seen = false } = {}) {
    const out = { labels: {} }
    for (const [label, link] of links) out.labels[label] = link.epochs.map((e) => summary(e, seen))
    if (histogram.totalCount > 0) out.latency = percentiles(histogram)
    if (earlyHistogram.totalCount > 0) out.latencyEarly = percentiles(earlyHistogram)
    return out
  },

  async close () {
    for (const link of links.values()) {
      link.closed = true
      link.client?.end()
    }
    await sleep(50)
    for (const link of links.values()) link.client?.destroy()
    links.clear()
    return true
  }
})
