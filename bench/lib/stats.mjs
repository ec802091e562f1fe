// Figures, their summaries (median [min–max] over the runs) and the markdown table.

export function median (values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

export function summarize (values) {
  const v = values.filter(Number.isFinite)
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, runs: values }
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), runs: values }
}

/** Per-run comparison of tier and baseline values (runs were paired as they alternated). */
export function compare (tier, baseline, how) {
  const n = Math.min(tier.length, baseline.length)
  const out = []
  for (let i = 0; i < n; i++) out.push(how === 'ratio' ? tier[i] / baseline[i] : tier[i] - baseline[i])
  return out
}

const OPS = {
  '>=': (a, b) => a >= b,
  '<=': (a, b) => a <= b,
  '<': (a, b) => a < b,
  '=': (a, b) => a === b
}

/**
 * A figure of one case: tier values, optional baseline values and their
 * per-run comparison, and the goal (judged on the median of `goal.on`).
 */
export function figure ({ name, unit = '', tier, baseline, compareBy, goal, note, digits }) {
  const f = { name, unit, tier: summarize(tier) }
  if (baseline !== undefined) f.baseline = summarize(baseline)
  if (compareBy !== undefined && baseline !== undefined) {
    f.compareBy = compareBy
    f.compared = summarize(compare(tier, baseline, compareBy))
  }
  if (goal !== undefined) {
    const subject = goal.on === 'compared' ? f.compared : f.tier
    f.goal = goal
    f.pass = subject !== undefined && Number.isFinite(subject.median) && OPS[goal.op](subject.median, goal.value)
    // Every run must meet a goal of exactly zero (losses, order violations).
    if (goal.op === '=' && subject !== undefined) f.pass = subject.runs.every((v) => v === goal.value)
  }
  if (note !== undefined) f.note = note
  if (digits !== undefined) f.digits = digits
  return f
}

function num (value, digits) {
  if (!Number.isFinite(value)) return '–'
  if (digits === 0) return Math.round(value).toLocaleString('en-US')
  if (digits !== undefined) return value.toFixed(digits)
  const abs = Math.abs(value)
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US')
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 10) return value.toFixed(1)
  if (abs >= 1) return value.toFixed(2)
  if (value === 0) return '0'
  return value.toFixed(3)
}

export function cell (s, digits) {
  if (s === undefined) return ''
  if (!Number.isFinite(s.median)) return '–'
  const runs = s.runs.filter(Number.isFinite).length
  if (runs === 1 || s.min === s.max) return `${num(s.median, digits)}${runs > 1 ? ` (×${runs})` : ''}`
  return `${num(s.median, digits)} [${num(s.min, digits)}–${num(s.max, digits)}]`
}

function goalText (f) {
  if (f.goal === undefined) return ''
  const { op, value, on } = f.goal
  const what = on === 'compared' ? (f.compareBy === 'ratio' ? 'ratio ' : 'added ') : ''
  return `${what}${op === '=' ? '=' : op.replace('>=', '≥').replace('<=', '≤')} ${value}${on !== 'compared' || f.compareBy !== 'ratio' ? (f.unit ? ` ${f.unit}` : '') : ''}`
}

export function table (cases) {
  const lines = [
    '| case | figure | tier | baseline | tier vs baseline | goal | ok |',
    '|---|---|---|---|---|---|---|'
  ]
  for (const c of cases) {
    for (const f of c.figures) {
      const unit = f.unit ? ` (${f.unit})` : ''
      const cmp = f.compared === undefined ? '' : `${f.compareBy === 'ratio' ? '×' : '+'}${cell(f.compared, f.compareBy === 'ratio' ? 2 : f.digits)}`
      const ok = f.goal === undefined ? '' : f.pass ? 'yes' : '**NO**'
      lines.push(`| ${c.name} | ${f.name}${unit} | ${cell(f.tier, f.digits)} | ${cell(f.baseline, f.digits)} | ${cmp} | ${goalText(f)} | ${ok} |`)
    }
  }
  return lines.join('\n')
}
