// The publisher process: one MQTT client that publishes 64-byte payloads (seq +
// monotonic send time) at QoS 0 or 1, with a window of unacknowledged QoS 1
// messages, at a fixed rate or as fast as the window allows.
//
// For the baselines of the failover cases it can do its own (client-side)
// failover: given several broker URLs it moves to the next one when its
// connection closes or goes silent for 1.5 × keepalive, and sends again what was
// not acknowledged, as a terminal connected straight to the brokers would.
import { setTimeout as sleep } from 'node:timers/promises'
import { LeanClient, makePayload } from './lib/mqtt-lean.mjs'
import { mono, serve } from './lib/procs.mjs'

let client
let opts
let urlIndex = 0
let run

async function connectTo (url) {
  const c = new LeanClient({ url, clientId: opts.clientId, clean: true, keepalive: opts.keepalive ?? 60, protocolVersion: opts.protocolVersion ?? 4 })
  const code = await c.connect()
  if (code !== 0) throw new Error(`CONNACK ${code} from ${url}`)
  c.on('puback', onPuback)
  c.on('close', () => onClose(c))
  c.socket.on('drain', () => run?.wakeDrain?.())
  return c
}

function onClose (c) {
  if (c !== client || run === undefined || run.stopping) return
  if (!opts.failover) return
  void failover('connection closed')
}

/** Client-side failover (baselines only): next URL, then everything unacknowledged again, in order. */
async function failover (reason) {
  if (run.failingOver) return
  run.failingOver = true
  run.failovers.push({ at: mono(), reason })
  client.destroy()
  client = undefined
  for (;;) {
    urlIndex = (urlIndex + 1) % opts.urls.length
    try {
      client = await connectTo(opts.urls[urlIndex])
      break
    } catch {
      await sleep(20)
    }
  }
  run.reconnectedAt ??= mono()
  run.connectedAtPerf = performance.now()
  run.failingOver = false
  const again = [...run.inflight.entries()].sort((a, b) => a[1].seq - b[1].seq)
  for (const [messageId, entry] of again) {
    entry.sentAt = mono()
    encode(entry.seq, messageId)
  }
  fill()
}

function encode (seq, messageId) {
  client.publish(opts.topic, makePayload(seq), run.qos, messageId)
}

function onPuback (messageId) {
  const entry = run?.inflight.get(messageId)
  if (entry === undefined) return
  run.inflight.delete(messageId)
  const now = mono()
  run.acked++
  markAcked(entry.seq)
  run.lastAckAt = now
  if (now >= run.ackWindow.from && now <= run.ackWindow.to) run.ackedInWindow++
  if (run.recordAcks) {
    run.ackSeq.push(entry.seq)
    run.ackAt.push(now)
    run.ackLatency.push(now - entry.sentAt)
  }
  if (run.blockedSince !== undefined) {
    run.blockedMs += now - run.blockedSince
    run.blocked.push([run.blockedSince, now])
    run.blockedSince = undefined
  }
  if (run.stopping && run.inflight.size === 0) run.wakeIdle?.()
  if (run.rate === 0) fill()
}

function markAcked (seq) {
  if (seq >= run.ackedBits.length) {
    const bigger = new Uint8Array(Math.max(seq + 1, run.ackedBits.length * 2))
    bigger.set(run.ackedBits)
    run.ackedBits = bigger
  }
  run.ackedBits[seq] = 1
}

function nextMessageId () {
  do {
    run.messageId = run.messageId >= 65535 ? 1 : run.messageId + 1
  } while (run.inflight.has(run.messageId))
  return run.messageId
}

/** How many messages are due now (fixed rate) or allowed (as fast as possible). */
function due () {
  if (run.stopping || (run.count > 0 && run.sent >= run.count)) return 0
  if (run.rate === 0) return Infinity
  return Math.floor(((mono() - run.startedAt) / 1000) * run.rate) - run.sent
}

function sendOne () {
  const seq = run.sent++
  if (run.firstSendAt === undefined) run.firstSendAt = mono()
  if (run.qos === 0) return client.publish(opts.topic, makePayload(seq), 0, 0)
  const messageId = nextMessageId()
  run.inflight.set(messageId, { seq, sentAt: mono() })
  encode(seq, messageId)
  return true
}

/** QoS 1: send while due and the window has room. */
function fill () {
  if (run === undefined || client === undefined || run.failingOver) return
  let n = due()
  while (n > 0 && run.inflight.size < run.window) {
    sendOne()
    n--
  }
  if (n > 0 && run.blockedSince === undefined && run.rate > 0) run.blockedSince = mono()
  if (run.count > 0 && run.sent >= run.count && run.inflight.size === 0) run.wakeIdle?.()
}

async function qos0Loop () {
  while (!run.stopping && (run.count === 0 || run.sent < run.count)) {
    if (client === undefined) { await sleep(1); continue }
    let n = Math.min(due(), 512)
    let writable = true
    while (n > 0 && writable) {
      writable = sendOne()
      n--
    }
    if (!writable) {
      await new Promise((resolve) => { run.wakeDrain = resolve })
      run.wakeDrain = undefined
    } else if (run.rate > 0) {
      await sleep(1)
    } else {
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  run.wakeIdle?.()
}

function keepaliveWatch () {
  if (!opts.failover || !(opts.keepalive > 0)) return undefined
  const periodMs = opts.keepalive * 1000
  let lastPing = 0
  return setInterval(() => {
    if (client === undefined || run.failingOver) return
    const now = performance.now()
    // Silent for 1.5 × keepalive: the broker is gone (frozen, cable cut).
    if (now - Math.max(client.lastRx, run.connectedAtPerf) > periodMs * 1.5) {
      void failover('keepalive expired')
      return
    }
    if (now - lastPing >= periodMs) {
      lastPing = now
      client.ping()
    }
  }, 50)
}

serve({
  async connect (args) {
    opts = args
    urlIndex = 0
    client = await connectTo(opts.urls[0])
    return { ok: true }
  },

  /** Starts publishing; `stop` ends it and reports. */
  start ({ qos = 1, window = 100, rate = 0, count = 0, recordAcks = false, ackWindow = { from: Infinity, to: -Infinity } }) {
    run = {
      // An MQTT 5 client keeps within the broker's Receive Maximum [MQTT-4.9.0-2], as the tier's sessions do.
      qos, window: Math.min(window, client.brokerReceiveMaximum), rate, count, recordAcks, ackWindow, ackedInWindow: 0,
      sent: 0, acked: 0, messageId: 0, inflight: new Map(), ackedBits: new Uint8Array(1 << 16),
      startedAt: mono(), connectedAtPerf: performance.now(), firstSendAt: undefined, lastAckAt: undefined,
      blockedMs: 0, blockedSince: undefined, blocked: [], failovers: [], reconnectedAt: undefined,
      ackSeq: [], ackAt: [], ackLatency: [], stopping: false
    }
    if (qos === 0) {
      run.loop = qos0Loop()
    } else {
      fill()
      if (rate > 0) {
        run.timer = setInterval(fill, 1)
      }
    }
    run.keepalive = keepaliveWatch()
    return { startedAt: run.startedAt }
  },

  /** Resolves once `count` messages were sent and acknowledged (count mode). */
  async finished ({ timeoutMs = 120_000 }) {
    if (run.sent >= run.count && run.inflight.size === 0) return true
    return Promise.race([
      new Promise((resolve) => { run.wakeIdle = () => resolve(true) }),
      sleep(timeoutMs).then(() => false)
    ])
  },

  /** Stops sending, waits up to drainMs for the outstanding acks, and reports. */
  async stop ({ drainMs = 2000 } = {}) {
    run.stopping = true
    clearInterval(run.timer)
    if (run.blockedSince !== undefined) {
      run.blockedMs += mono() - run.blockedSince
      run.blocked.push([run.blockedSince, mono()])
      run.blockedSince = undefined
    }
    if (run.loop !== undefined) await run.loop
    if (run.inflight.size > 0 && drainMs > 0) {
      await Promise.race([new Promise((resolve) => { run.wakeIdle = resolve }), sleep(drainMs)])
    }
    clearInterval(run.keepalive)
    const stoppedAt = mono()
    return {
      sent: run.sent,
      acked: run.acked,
      ackedInWindow: run.ackedInWindow,
      unacked: run.inflight.size,
      startedAt: run.startedAt,
      firstSendAt: run.firstSendAt,
      lastAckAt: run.lastAckAt,
      stoppedAt,
      blockedMs: run.blockedMs,
      blocked: run.blocked,
      failovers: run.failovers,
      reconnectedAt: run.reconnectedAt,
      ackedBits: run.ackedBits.subarray(0, run.sent),
      ...(run.recordAcks && {
        ackSeq: Uint32Array.from(run.ackSeq), ackAt: Float64Array.from(run.ackAt), ackLatency: Float64Array.from(run.ackLatency)
      })
    }
  },

  async disconnect () {
    client?.end()
    await sleep(50)
    client?.destroy()
    return true
  }
})
