/**
 * Reads Prometheus text exposition into `name{a="1",b="2"}` → value, labels
 * sorted by name, so tests can look a series up whatever order it was written in.
 */
export type Samples = Map<string, number>

export function parseMetrics (text: string): Samples {
  const samples: Samples = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const [, name, labels = '', value] = match
    samples.set(series(name!, Object.fromEntries([...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))), Number(value))
  }
  return samples
}

/** The key of one series: `series('x_total', { qos: '1', broker: 'b' })` → `x_total{broker="b",qos="1"}`. */
export function series (name: string, labels: Record<string, string | number> = {}): string {
  const keys = Object.keys(labels).sort()
  return keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}`
}
