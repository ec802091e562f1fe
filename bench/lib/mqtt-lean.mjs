// A small MQTT 3.1.1 (or MQTT 5: `protocolVersion: 5`) client for the benchmark's own processes, on mqtt-packet
// (the codec that mqtt.js and Aedes use). It does only what the benchmark
// needs, with no queueing or reconnect logic of its own, so that the client's
// cost is small and the same whether it talks to the tier or to a broker.
import net from 'node:net'
import { EventEmitter } from 'node:events'
import mqttPacket from 'mqtt-packet'

const PINGREQ = mqttPacket.generate({ cmd: 'pingreq' })

export class LeanClient extends EventEmitter {
  /**
   * `protocolVersion` 5: an MQTT 5 client that announces `receiveMaximum` (the window a broker may
   * deliver to it) and reads the broker's own from CONNACK (`brokerReceiveMaximum`).
   */
  constructor ({ url, clientId, clean = true, keepalive = 60, connectTimeoutMs = 10_000, protocolVersion = 4, receiveMaximum = 100 }) {
    super()
    const u = new URL(url)
    this.host = u.hostname
    this.port = Number(u.port)
    this.clientId = clientId
    this.clean = clean
    this.keepalive = keepalive
    this.connectTimeoutMs = connectTimeoutMs
    this.socket = undefined
    this.connected = false
    this.closed = false
    this.lastRx = 0
    this.corked = false
    this.opts = { protocolVersion }
    this.receiveMaximum = receiveMaximum
    this.brokerReceiveMaximum = 65_535
    this.parser = mqttPacket.parser(this.opts)
    this.parser.on('packet', (packet) => this.onPacket(packet))
    this.parser.on('error', (err) => this.destroy(err))
  }

  /** Resolves with the CONNACK return code (0 = accepted); rejects on a socket error or timeout. */
  connect () {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port, noDelay: true })
      this.socket = socket
      socket.setNoDelay(true)
      const timer = setTimeout(() => fail(new Error('CONNACK timeout')), this.connectTimeoutMs)
      const fail = (err) => {
        clearTimeout(timer)
        socket.destroy()
        reject(err)
      }
      socket.once('error', fail)
      socket.on('data', (chunk) => {
        this.lastRx = performance.now()
        this.parser.parse(chunk)
      })
      socket.once('close', () => {
        const was = this.connected
        this.connected = false
        this.closed = true
        clearTimeout(timer)
        if (!was) reject(new Error('closed before CONNACK'))
        this.emit('close')
      })
      socket.once('connect', () => {
        socket.write(mqttPacket.generate({
          cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.opts.protocolVersion, clientId: this.clientId,
          clean: this.clean, keepalive: this.keepalive,
          ...(this.opts.protocolVersion === 5 && { properties: { receiveMaximum: this.receiveMaximum } })
        }, this.opts))
      })
      this.once('connack', (packet) => {
        clearTimeout(timer)
        socket.removeListener('error', fail)
        socket.on('error', () => {})
        const code = packet.returnCode ?? packet.reasonCode ?? 0
        this.connected = code === 0
        this.brokerReceiveMaximum = packet.properties?.receiveMaximum ?? 65_535
        resolve(code)
      })
    })
  }

  onPacket (packet) {
    switch (packet.cmd) {
      case 'publish':
        if (packet.qos === 1) this.write(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId }, this.opts))
        if (packet.qos === 2) this.write(mqttPacket.generate({ cmd: 'pubrec', messageId: packet.messageId }, this.opts))
        this.emit('message', packet)
        break
      case 'pubrel': this.write(mqttPacket.generate({ cmd: 'pubcomp', messageId: packet.messageId }, this.opts)); break
      case 'pubrec': this.write(mqttPacket.generate({ cmd: 'pubrel', messageId: packet.messageId }, this.opts)); break
      // A QoS 2 publish is done at PUBCOMP: for the publisher's window it is its ack.
      case 'pubcomp':
      case 'puback': this.emit('puback', packet.messageId); break
      case 'connack': this.emit('connack', packet); break
      case 'suback': this.emit('suback', packet); break
      case 'pingresp': this.emit('pingresp'); break
      default: break
    }
  }

  /** Writes are corked per tick: many small packets leave in few segments. */
  write (buffer) {
    const socket = this.socket
    if (socket === undefined || socket.destroyed) return false
    if (!this.corked) {
      this.corked = true
      socket.cork()
      process.nextTick(() => {
        this.corked = false
        socket.uncork()
      })
    }
    return socket.write(buffer)
  }

  publish (topic, payload, qos, messageId) {
    return this.write(mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId, retain: false, dup: false }, this.opts))
  }

  subscribe (topic, qos) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('SUBACK timeout')), 10_000)
      this.once('suback', (packet) => {
        clearTimeout(timer)
        resolve(packet.granted)
      })
      this.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] }, this.opts))
    })
  }

  ping () { this.write(PINGREQ) }

  /** DISCONNECT, then close. */
  end () {
    if (this.socket === undefined || this.socket.destroyed) return
    this.socket.end(mqttPacket.generate({ cmd: 'disconnect' }))
  }

  destroy () {
    this.socket?.destroy()
  }
}

/** 64-byte payload: seq (u32 at 0), monotonic send time in ns (u64 at 8); the rest is filler. */
export const PAYLOAD_SIZE = 64

export function makePayload (seq) {
  const payload = Buffer.alloc(PAYLOAD_SIZE, 0x2e)
  payload.writeUInt32BE(seq, 0)
  payload.writeBigUInt64BE(process.hrtime.bigint(), 8)
  return payload
}

export function readSeq (payload) { return payload.readUInt32BE(0) }
export function readSentNs (payload) { return payload.readBigUInt64BE(8) }
