/** The subset of a pino logger the tier writes to; any pino instance fits. */
export interface Logger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
  debug: (obj: object, msg?: string) => void
  /** pino's level, set on a config reload when the logger has one. */
  level?: string
}

function discard (): void {}

export const silentLogger: Logger = { info: discard, warn: discard, error: discard, debug: discard }
