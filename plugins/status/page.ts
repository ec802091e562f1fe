/**
 * The live status page, as a string so that `tsc` alone ships it (no build
 * step, no static files to copy). The server renders the current snapshot into
 * it, so the first paint already shows the state (also to a screenshot or a
 * browser without scripts); the page's plain JS then draws the chart from the
 * same snapshot, embedded as JSON, and follows `events` (server-sent events,
 * relative so that a reverse proxy may mount it under a path). Everything from
 * the server goes in as text, never as HTML: escaped here, `textContent` there.
 */
import type { StatusSnapshot } from './feed.js'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escape = (value: unknown): string => String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!)

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB']
function bytes (n: number): string {
  let i = 0
  while (n >= 1024 && i < BYTE_UNITS.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${BYTE_UNITS[i]}`
}

/** HH:MM:SS in UTC; the page's script shows local times once it runs. */
const clock = (at: number): string => new Date(at).toISOString().slice(11, 19)

function replayLine (replay: StatusSnapshot['replay']): string {
  if (replay === null) return 'no replay since the status server started'
  return replay.active
    ? `replaying since ${clock(replay.startedAt)}: ${replay.replayed} replayed, ${replay.pending} pending`
    : `last replay at ${clock(replay.startedAt)}: ${replay.replayed} replayed in ${((replay.durationMs ?? 0) / 1000).toFixed(1)} s`
}

/** What a broker's upstream sessions speak, as the card says it (the same words as the script below). */
function protocolLine (version: 4 | 5 | null): string {
  return version === null ? 'protocol not decided yet' : version === 5 ? 'upstream MQTT 5' : 'upstream MQTT 3.1.1'
}

/** The page with `snapshot` rendered into it. */
export function statusPage (snapshot: StatusSnapshot): string {
  const { mode, brokers, pending, clients, counters, events, replay } = snapshot
  const dropped = Object.entries(counters.dropped)
  const fill: Record<string, string> = {
    mode: escape(mode),
    ...Object.fromEntries((['broker1', 'broker2'] as const).flatMap((name) => [
      [`${name}State`, escape(brokers[name].state)],
      [`${name}Url`, escape(brokers[name].url)],
      [`${name}Protocol`, escape(protocolLine(brokers[name].protocolVersion))]
    ])),
    pending: String(pending.messages),
    pendingBytes: bytes(pending.bytes),
    clients: String(clients),
    counters: `stored ${counters.stored} · replayed ${counters.replayed} · failovers ${counters.failovers} · failbacks ${counters.failbacks}`,
    dropped: String(dropped.reduce((sum, [, count]) => sum + count, 0)),
    drops: dropped.map(([reason, count]) => `<li data-reason="${escape(reason)}">${escape(reason)} <b>${count}</b></li>`).join(''),
    replay: escape(replayLine(replay)),
    replayValue: replay === null ? '0' : String(replay.replayed + replay.pending === 0 ? 1 : replay.replayed / (replay.replayed + replay.pending)),
    events: events.length === 0
      ? '<tr><td colspan="2" class="muted">none yet</td></tr>'
      : events.map((e) => `<tr data-type="${escape(e.type)}"><td>${clock(e.at)}</td><td>${escape(e.type + (e.detail !== '' ? `: ${e.detail}` : ''))}</td></tr>`).join(''),
    // In a <script> element only "</" can end it early: \u003c keeps the JSON inert.
    initial: JSON.stringify(snapshot).replace(/</g, '\\u003c')
  }
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => fill[key] ?? '')
}

const template = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aedes-dual-broker</title>
<style>
  :root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --dim: #6e7781; font: 14px/1.4 system-ui, sans-serif; color: #1f2328; }
  body { margin: 0 auto; padding: 16px; max-width: 760px; }
  h1 { font-size: 18px; margin: 0 0 12px; display: flex; gap: 12px; align-items: center; }
  .badge { padding: 2px 10px; border-radius: 12px; color: #fff; background: var(--dim); font-size: 13px; }
  [data-mode="normal"] #mode { background: var(--ok); }
  [data-mode="failover"] #mode { background: var(--bad); }
  [data-mode="replaying"] #mode { background: var(--warn); }
  #link { margin-left: auto; font-size: 12px; font-weight: normal; color: var(--dim); }
  .row { display: flex; gap: 12px; margin-bottom: 12px; }
  .card { flex: 1; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; }
  .card h2 { font-size: 13px; margin: 0; color: var(--dim); font-weight: normal; }
  .card .state { font-size: 20px; font-weight: 600; }
  .card[data-state="up"] .state { color: var(--ok); }
  .card[data-state="down"] .state { color: var(--bad); }
  .url, .protocol { font-size: 12px; color: var(--dim); word-break: break-all; }
  svg { width: 100%; height: 160px; display: block; }
  #area { fill: #0969da22; } #line { fill: none; stroke: #0969da; stroke-width: 1.5; }
  svg text { font-size: 11px; fill: var(--dim); }
  progress { width: 100%; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  td { padding: 2px 6px; border-top: 1px solid #eaeef2; vertical-align: top; }
  td:first-child { color: var(--dim); white-space: nowrap; }
  .muted { color: var(--dim); }
  #drops { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; color: var(--dim); }
  #drops b { color: #1f2328; font-weight: 600; }
</style>
</head>
<body data-mode="{{mode}}">
<h1>aedes-dual-broker <span id="mode" class="badge">{{mode}}</span> <span id="link">connecting…</span></h1>
<div class="row">
  <div class="card" data-broker="broker1" data-state="{{broker1State}}"><h2>Broker1 (primary)</h2><div class="state">{{broker1State}}</div><div class="url">{{broker1Url}}</div><div class="protocol">{{broker1Protocol}}</div></div>
  <div class="card" data-broker="broker2" data-state="{{broker2State}}"><h2>Broker2 (standby)</h2><div class="state">{{broker2State}}</div><div class="url">{{broker2Url}}</div><div class="protocol">{{broker2Protocol}}</div></div>
</div>
<div class="row">
  <div class="card"><h2>Pending in the store</h2><div class="state" id="pending">{{pending}}</div><div class="url" id="pending-bytes">{{pendingBytes}}</div></div>
  <div class="card"><h2>Terminals</h2><div class="state" id="clients">{{clients}}</div><div class="url" id="counters">{{counters}}</div></div>
  <div class="card"><h2>Dropped, by reason</h2><div class="state" id="dropped">{{dropped}}</div><ul id="drops">{{drops}}</ul></div>
</div>
<div class="card" style="margin-bottom:12px">
  <h2>Pending messages, last <span id="span">10 minutes</span></h2>
  <svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="pending messages over time">
    <line x1="40" y1="140" x2="600" y2="140" stroke="#d0d7de"/>
    <path id="area" d=""/><polyline id="line" points=""/>
    <text x="0" y="12" id="ymax">0</text><text x="0" y="140">0</text>
    <text x="40" y="156" id="xmin">−10 min</text><text x="570" y="156">now</text>
  </svg>
</div>
<div class="card" style="margin-bottom:12px">
  <h2>Replay to Broker1</h2>
  <progress id="replay-bar" max="1" value="{{replayValue}}"></progress>
  <div id="replay" class="muted">{{replay}}</div>
</div>
<div class="card">
  <h2>Last events</h2>
  <table><tbody id="events">{{events}}</tbody></table>
</div>
<script type="application/json" id="initial">{{initial}}</script>
<script>
(function () {
  'use strict'
  // The server keeps 10 minutes; a younger server's chart spans what it has, at least a minute.
  var WINDOW_MS = 10 * 60 * 1000
  var MIN_SPAN_MS = 60 * 1000
  var X0 = 40, W = 560, H = 130, Y0 = 140
  var samples = []
  function $ (id) { return document.getElementById(id) }
  function bytes (n) {
    var units = ['B', 'KiB', 'MiB', 'GiB']
    var i = 0
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i]
  }
  function time (t) { return new Date(t).toLocaleTimeString() }
  // A round axis maximum (1, 2, 5 × 10^n) so the scale does not jitter.
  function ceilNice (v) {
    var p = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1))))
    var steps = [1, 2, 5, 10]
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p
    return 10 * p
  }

  function drawChart (now) {
    while (samples.length > 0 && samples[0][0] < now - WINDOW_MS) samples.shift()
    var span = samples.length === 0 ? MIN_SPAN_MS : Math.max(MIN_SPAN_MS, now - samples[0][0])
    var minutes = Math.ceil(span / 60000)
    span = minutes * 60000
    var max = ceilNice(samples.reduce(function (m, s) { return Math.max(m, s[1]) }, 0))
    var pts = samples.map(function (s) {
      var x = X0 + (s[0] - (now - span)) / span * W
      return x.toFixed(1) + ',' + (Y0 - s[1] / max * H).toFixed(1)
    })
    $('line').setAttribute('points', pts.join(' '))
    $('area').setAttribute('d', pts.length === 0 ? '' : 'M' + pts[0].split(',')[0] + ',' + Y0 + ' L' + pts.join(' L') + ' L' + pts[pts.length - 1].split(',')[0] + ',' + Y0 + ' Z')
    $('ymax').textContent = String(max)
    $('xmin').textContent = '−' + minutes + ' min'
    $('span').textContent = minutes === 1 ? 'minute' : minutes + ' minutes'
  }

  function drawReplay (r) {
    if (r === null) return
    var total = r.replayed + r.pending
    $('replay-bar').value = total === 0 ? 1 : r.replayed / total
    $('replay').textContent = r.active
      ? 'replaying since ' + time(r.startedAt) + ': ' + r.replayed + ' replayed, ' + r.pending + ' pending'
      : 'last replay at ' + time(r.startedAt) + ': ' + r.replayed + ' replayed in ' + (r.durationMs / 1000).toFixed(1) + ' s'
  }

  function drawEvents (events) {
    var body = $('events')
    if (events.length === 0) return
    body.textContent = ''
    events.forEach(function (e) {
      var row = body.insertRow()
      row.insertCell().textContent = time(e.at)
      row.insertCell().textContent = e.type + (e.detail ? ': ' + e.detail : '')
      row.dataset.type = e.type
    })
  }

  function drawDrops (dropped) {
    var list = $('drops')
    var reasons = Object.keys(dropped)
    $('dropped').textContent = String(reasons.reduce(function (sum, k) { return sum + dropped[k] }, 0))
    list.textContent = ''
    reasons.forEach(function (reason) {
      var item = document.createElement('li')
      item.dataset.reason = reason
      item.appendChild(document.createTextNode(reason + ' '))
      item.appendChild(document.createElement('b')).textContent = String(dropped[reason])
      list.appendChild(item)
    })
  }

  function render (s) {
    if (s.history) samples = s.history.map(function (h) { return [h[0], h[1]] })
    else samples.push([s.at, s.pending.messages])
    document.body.dataset.mode = s.mode
    $('mode').textContent = s.mode
    ;['broker1', 'broker2'].forEach(function (name) {
      var card = document.querySelector('[data-broker="' + name + '"]')
      card.dataset.state = s.brokers[name].state
      card.querySelector('.state').textContent = s.brokers[name].state
      card.querySelector('.url').textContent = s.brokers[name].url
      var v = s.brokers[name].protocolVersion
      card.querySelector('.protocol').textContent = v === null ? 'protocol not decided yet' : v === 5 ? 'upstream MQTT 5' : 'upstream MQTT 3.1.1'
    })
    $('pending').textContent = String(s.pending.messages)
    $('pending-bytes').textContent = bytes(s.pending.bytes)
    $('clients').textContent = String(s.clients)
    var c = s.counters
    $('counters').textContent = 'stored ' + c.stored + ' · replayed ' + c.replayed +
      ' · failovers ' + c.failovers + ' · failbacks ' + c.failbacks
    drawDrops(c.dropped)
    drawChart(s.at)
    drawReplay(s.replay)
    drawEvents(s.events)
  }

  // The snapshot the server rendered the page with: the chart and local times at once, before the stream answers.
  render(JSON.parse($('initial').textContent))
  var source = new EventSource('events')
  source.onopen = function () { $('link').textContent = 'live' }
  source.onerror = function () { $('link').textContent = 'reconnecting…' }
  source.onmessage = function (e) { render(JSON.parse(e.data)) }
})()
</script>
</body>
</html>
`
