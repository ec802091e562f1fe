import t from 'tap'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'
import { statusServer } from '../plugins/status/index.js'
import { connectClient } from './support/client.js'
import { startDurableTier, tempDir } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'

/** Debian's chromium (apt-get install chromium, see .ci/run): playwright never downloads a browser here. */
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** UPDATE_SCREENSHOT=1 also writes the failover screenshot to docs/status-page.png (README's picture). */
const DOCS_SCREENSHOT = fileURLToPath(new URL('../docs/status-page.png', import.meta.url))

/** The little of the DOM that the functions run in the page use (the project's tsconfig has no DOM lib). */
interface PageElement { dataset: Record<string, string | undefined>, textContent: string | null }
declare const document: {
  body: PageElement
  querySelector: (selector: string) => PageElement | null
  getElementById: (id: string) => PageElement | null
}

/** What the page shows, as the page's own script set it. */
function shows (page: Page, mode: string, broker1: string, broker2: string, timeout = 15_000): Promise<unknown> {
  return page.waitForFunction(([mode, broker1, broker2]) => {
    const state = (name: string): string | undefined => document.querySelector(`[data-broker="${name}"]`)?.dataset.state
    return document.body.dataset.mode === mode && state('broker1') === broker1 && state('broker2') === broker2
  }, [mode, broker1, broker2], { timeout })
}

const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText()

t.test('the status page follows a failover and a failback live', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startDurableTier(t, b1.url, b2.url, { policies: [{ topic: 'alarms/#', mode: 'queue' }] })
  const status = await statusServer(tier, { port: 0 })
  t.teardown(status.close)

  // launchPersistentContext: playwright takes the profile folder itself and refuses --user-data-dir in args.
  const browser = await chromium.launchPersistentContext(tempDir(t, 'chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 800, height: 600 }
  })
  t.teardown(() => browser.close())
  const page = browser.pages()[0] ?? await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))

  await page.goto(status.url)
  await shows(page, 'normal', 'up', 'up')
  t.equal(await text(page, '#mode'), 'normal', 'mode normal, both brokers up')
  t.equal(await text(page, '[data-broker="broker1"] .url'), b1.url)
  await page.waitForFunction(() => document.getElementById('link')?.textContent === 'live')

  const terminal = await connectClient(t, url, { clientId: 'page-watcher' })
  await b1.kill()
  await shows(page, 'failover', 'down', 'up')
  t.equal(await text(page, '#mode'), 'failover', 'the page turned to failover without a reload')
  t.match(await text(page, '#events tr:first-child'), /failover/, 'the failover is the last event')

  // A backlog for the chart and the replay bar: queued while Broker1 is away.
  const backlog = 40
  for (let i = 0; i < backlog; i++) await terminal.publishAsync('alarms/door', `open ${i}`, { qos: 1 })
  await page.waitForFunction((n) => document.getElementById('pending')?.textContent === String(n), backlog)
  t.not(await page.locator('#line').getAttribute('points'), '', 'the chart has a line')
  const shot = join(tempDir(t, 'screenshot-'), 'status-page.png')
  await page.screenshot({ path: shot, fullPage: true })
  if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync(shot, DOCS_SCREENSHOT)

  await b1.restart()
  await shows(page, 'normal', 'up', 'up', 20_000)
  t.equal(await text(page, '#mode'), 'normal', 'back to normal after the failback')
  await page.waitForFunction(() => document.getElementById('pending')?.textContent === '0')
  t.match(await text(page, '#replay'), new RegExp(`^last replay at .*: ${backlog} replayed in`), 'replay progress: the whole backlog')
  t.equal(await page.locator('#replay-bar').evaluate((bar) => (bar as unknown as { value: number }).value), 1, 'the bar is full')
  t.match(await text(page, '#events'), /failback/, 'the failback is listed')
  t.same(errors, [], 'no script errors on the page')
})
