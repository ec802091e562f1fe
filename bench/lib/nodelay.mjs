// What-if experiment, not used by default (`npm run bench -- --what-if-nodelay`):
// preloaded into the tier process (`node --import`), it turns Nagle's
// algorithm off on every TCP socket the tier opens or accepts, without touching
// src/. It shows how much of the tier's cost is Nagle + delayed ACK stalls.
import net from 'node:net'

const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
  this.setNoDelay(true)
  return connect.apply(this, args)
}
const createServer = net.createServer
net.createServer = function (options, listener) {
  if (typeof options === 'function' || options === undefined) return createServer.call(this, { noDelay: true }, options)
  return createServer.call(this, { ...options, noDelay: true }, listener)
}
