// A relay with no MQTT in it: each accepted connection is piped, byte for byte, to the broker,
// with TCP_NODELAY on both sockets, as the tier sets it. The floor any relay in node stands on.
//   node bench/lib/pipe-proxy.mjs <brokerPort> <listenPort>
import net from 'node:net'
const [brokerPort, listenPort] = process.argv.slice(2).map(Number)
net.createServer({ noDelay: true }, (terminal) => {
  const upstream = net.connect({ host: '127.0.0.1', port: brokerPort, noDelay: true })
  terminal.pipe(upstream).pipe(terminal)
  const end = () => { terminal.destroy(); upstream.destroy() }
  terminal.on('error', end).on('close', end)
  upstream.on('error', end).on('close', end)
}).listen(listenPort, '127.0.0.1')
