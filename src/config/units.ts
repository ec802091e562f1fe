import { z } from 'zod'

const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30
}
const DURATION_UNITS: Record<string, number> = {
  ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3
}

function parseUnit (text: string, units: Record<string, number>): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  if (match === null) return undefined
  const factor = units[(match[2] ?? '').toLowerCase() || Object.keys(units)[0]!]
  return factor === undefined ? undefined : Math.round(Number(match[1]) * factor)
}

/** A byte count: a number, or a string such as "512MiB" or "10 MB". */
export const size = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value
  const bytes = parseUnit(value, SIZE_UNITS)
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a size like "512MiB"` })
    return z.NEVER
  }
  return bytes
})

/** A duration in milliseconds: a number, or a string such as "30s", "10m", "2h". */
export const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value
  const ms = parseUnit(value, DURATION_UNITS)
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a duration like "30s" or "10m"` })
    return z.NEVER
  }
  return ms
})
