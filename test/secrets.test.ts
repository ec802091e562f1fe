import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startCli, runCli } from './support/cli-process.js'
import { connackCode, connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'

const SERVICE_PASSWORD = 'svc-Secret-7f3a9c'
const TERMINAL_PASSWORD = 'term-Secret-b81d44'
const WRONG_PASSWORD = 'wrong-Secret-0c5e12'
const SECRETS = [SERVICE_PASSWORD, TERMINAL_PASSWORD, WRONG_PASSWORD]

t.test('no password ever appears in logs, errors, /health, /metrics or --print-config', async (t) => {
  const users = { tier: SERVICE_PASSWORD, device: TERMINAL_PASSWORD }
  const b1 = await startMosquitto(t, { users })
  const b2 = await startMosquitto(t, { users })
  const dir = tempDir(t)
  const config = join(dir, 'config.yaml')
  writeFileSync(config, [
    'listen: { host: 127.0.0.1, port: 0 }',
    'http: { port: 0 }',
    `data: ${join(dir, 'data')}`,
    `broker1: { url: "mqtt://tier:${SERVICE_PASSWORD}@127.0.0.1:${b1.port}", service: { username: tier, password: ${SERVICE_PASSWORD} } }`,
    `broker2: { url: ${b2.url}, service: { username: tier, password: ${SERVICE_PASSWORD} } }`,
    'health: { failbackDelayMs: 200 }',
    'logLevel: debug'
  ].join('\n'))

  const printed = await runCli(['--config', config, '--print-config'])
  t.equal(printed.code, 0)
  const cli = await startCli(t, ['--config', config])
  await connectClient(t, cli.url, { clientId: 'device', username: 'device', password: TERMINAL_PASSWORD })
  t.equal(await connackCode(cli.url, { username: 'device', password: WRONG_PASSWORD }), 5, 'a bad password is refused')
  const { port } = cli.logs.find((line) => line.msg === 'listening')!.http as { port: number }
  await b1.kill()
  await cli.waitForLog('broker down')
  const health = await (await fetch(`http://127.0.0.1:${port}/health`)).text()
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  await b1.restart()
  await cli.waitForLog('broker up', (line) => line.broker === 'broker1')
  await cli.kill('SIGTERM')

  const places: Record<string, string> = {
    'the logs': cli.logs.map((line) => JSON.stringify(line)).join('\n') + cli.stderr(),
    '--print-config': printed.stdout + printed.stderr,
    '/health': health,
    '/metrics': metrics
  }
  for (const [place, text] of Object.entries(places)) {
    t.ok(text.length > 0, `${place} has content`)
    for (const secret of SECRETS) t.notOk(text.includes(secret), `${place} does not contain a password`)
  }
  t.match(printed.stdout, /\*\*\*/, '--print-config shows that secrets are set, masked')
})
