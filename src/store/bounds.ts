import { optionsError } from './errors.js'
import type { StoreBounds } from './types.js'

const OVERFLOWS: ReadonlySet<unknown> = new Set(['drop-oldest', 'reject-new'])

/**
 * Checks the options every store shares, as a public constructor must: the store is built by
 * the deployment's own code, outside the plugin's schema. Throws `DUALBROKER_ERR_STORE_OPTIONS`.
 */
export function checkBounds (options: unknown): asserts options is StoreBounds {
  if (typeof options !== 'object' || options === null) throw optionsError('options must be an object')
  const given = options as Record<string, unknown>
  for (const name of ['maxMessages', 'maxBytes'] as const) {
    const value = given[name]
    if (!Number.isSafeInteger(value) || (value as number) < 1) throw optionsError(`${name} must be a positive integer, not ${String(value)}`)
  }
  if (!OVERFLOWS.has(given.overflow)) throw optionsError(`overflow must be "drop-oldest" or "reject-new", not ${JSON.stringify(given.overflow)}`)
  const logger = given.logger as Record<string, unknown> | undefined
  if (logger !== undefined && !['info', 'warn', 'error'].every((level) => typeof logger?.[level] === 'function')) {
    throw optionsError('logger must have info, warn and error methods')
  }
}
