/** Pure helpers for end-to-end sequence counting (no I/O). */

export type Expected = number[] | { from: number; to: number }

/** Numbers of `expected` (a list or an inclusive range) absent from `got`, ascending. */
export function missing(expected: Expected, got: number[]): number[] {
  const seen = new Set(got)
  const want = Array.isArray(expected) ? [...new Set(expected)] : range(expected.from, expected.to)
  return want.filter(n => !seen.has(n)).sort((a, b) => a - b)
}

/**
 * Positions where a number arrives below the running maximum for the first
 * time. Re-deliveries of something already seen are duplicates, not
 * reordering, so they are not counted here.
 */
export function orderViolations(got: number[]): number {
  const seen = new Set<number>()
  let max = -Infinity
  let count = 0
  for (const n of got) {
    if (!seen.has(n) && n < max) count++
    seen.add(n)
    if (n > max) max = n
  }
  return count
}

/** How many entries repeat an earlier one (length minus distinct count). */
export function duplicates(got: number[]): number {
  return got.length - new Set(got).size
}

/** Sequence number of a payload: a decimal string, or JSON `{"seq": n}`. */
export function parseSeq(payload: Buffer | string): number | undefined {
  const text = payload.toString().trim()
  if (/^-?\d+$/.test(text)) return Number(text)
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value === 'object' && value !== null && 'seq' in value) {
      const { seq } = value
      if (typeof seq === 'number' && Number.isFinite(seq)) return seq
    }
  } catch {
    // not JSON: no sequence number
  }
  return undefined
}

function range(from: number, to: number): number[] {
  const out: number[] = []
  for (let n = from; n <= to; n++) out.push(n)
  return out
}
