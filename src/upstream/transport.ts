import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { createWebSocketStream, WebSocket } from 'ws'

/** TLS material for mqtts:// and wss:// upstreams, read once at start (see BrokerEndpoint). */
export interface TlsMaterial {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  rejectUnauthorized: boolean
}

const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'tcp:': 1883, 'mqtts:': 8883, 'ssl:': 8883, 'tls:': 8883, 'ws:': 80, 'wss:': 443 }

/**
 * Opens the byte stream to one broker for the URL schemes the config accepts.
 * TLS verification stays on unless the operator turned it off for this broker.
 * Emits 'connect' (TCP) or 'secureConnect' (TLS) — callers listen for neither:
 * the CONNACK is what counts.
 */
export function openTransport (url: URL, material: TlsMaterial, localAddress?: string): Duplex {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') // IPv6 literals come bracketed
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol]! : Number(url.port)
  const source = localAddress === undefined ? {} : { localAddress }
  switch (url.protocol) {
    case 'mqtts:':
    case 'ssl:':
    case 'tls:':
      return tls.connect({ host, port, ...source, ...material, ...(net.isIP(host) === 0 && { servername: host }) }).setNoDelay(true)
    case 'ws:':
    case 'wss:':
      return createWebSocketStream(new WebSocket(withoutCredentials(url), 'mqtt', { ...source, ...material, perMessageDeflate: false }))
    default:
      // Publishes and acks are small writes: Nagle's algorithm would hold them for a delayed ACK.
      return net.connect({ host, port, noDelay: true, ...source })
  }
}

/** The URL without user name and password: credentials travel in CONNECT (never as an HTTP Authorization header) and never into a log. */
export function withoutCredentials (url: URL): URL {
  const bare = new URL(url)
  bare.username = ''
  bare.password = ''
  return bare
}
