import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import type { Test } from 'tap'

/** Error from a failed connect; `code` is the CONNACK return/reason code (number) or an errno string. */
export type ConnectError = Error & { code?: number | string }

let probeCounter = 0
function probeId(): string {
  return `probe-${process.pid}-${++probeCounter}-${Math.random().toString(16).slice(2, 8)}`
}

/**
 * Connect an mqtt.js client and resolve once CONNACK(0) arrives. Rejects with
 * mqtt.js' own error, so a refusal keeps its numeric `code`. Reconnects are
 * off by default: a test should see a failure rather than a silent retry.
 */
export function connectClient(t: Test, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const options: IClientOptions = { reconnectPeriod: 0, ...opts }
  const client = connect(url, options)
  // A killed broker makes mqtt.js emit 'error' later on; without a listener
  // that would crash the whole test process instead of failing one assertion.
  client.on('error', () => {})
  t.teardown(() => client.endAsync(true))
  return new Promise((resolve, reject) => {
    const settle = (err?: ConnectError): void => {
      client.off('connect', onConnect)
      client.off('error', onError)
      client.off('close', onClose)
      if (err === undefined) return resolve(client)
      client.end(true)
      reject(err)
    }
    const onConnect = (): void => settle()
    const onError = (err: ConnectError): void => settle(err)
    const onClose = (): void => {
      // With reconnects enabled a close is just a step towards the next try.
      if (!options.reconnectPeriod) settle(new Error(`connection to ${url} closed before CONNACK`))
    }
    client.on('connect', onConnect)
    client.on('error', onError)
    client.on('close', onClose)
  })
}

/**
 * CONNACK code a broker answers for these options: 0 on success, the refusal
 * code otherwise (MQTT 3.1.1 return code, or MQTT 5 reason code when
 * protocolVersion is 5). Rejects on network errors and timeouts.
 */
export function connackCode(url: string, opts: IClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, clientId: probeId(), ...opts })
    const finish = (fn: () => void): void => {
      client.removeAllListeners('connect')
      client.removeAllListeners('close')
      client.end(true)
      fn()
    }
    client.on('connect', () => finish(() => resolve(0)))
    client.on('error', (err: ConnectError) => {
      // mqtt.js reports a refused CONNACK as an error whose code is a number;
      // socket errors carry a string code such as ECONNREFUSED.
      finish(() => (typeof err.code === 'number' ? resolve(err.code) : reject(err)))
    })
    client.on('close', () => finish(() => reject(new Error(`connection to ${url} closed before CONNACK`))))
  })
}
