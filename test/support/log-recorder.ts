import type { Logger } from '../../src/index.js'

export interface LogRecord { level: 'info' | 'warn' | 'error' | 'debug', msg: string | undefined, fields: Record<string, unknown> }

/** A Logger that keeps every line, and resolves waiters on the first line with a given msg. */
export interface LogRecorder extends Logger {
  readonly lines: LogRecord[]
  next: (msg: string, match?: (fields: Record<string, unknown>) => boolean) => Promise<LogRecord>
}

export function recordLogs (): LogRecorder {
  const lines: LogRecord[] = []
  const waiters = new Set<(line: LogRecord) => boolean>()
  const write = (level: LogRecord['level']) => (fields: object, msg?: string): void => {
    const line = { level, msg, fields: { ...fields } as Record<string, unknown> }
    lines.push(line)
    for (const waiter of [...waiters]) if (waiter(line)) waiters.delete(waiter)
  }
  return {
    lines,
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    debug: write('debug'),
    next: (msg, match = () => true) => new Promise((resolve) => {
      waiters.add((line) => {
        if (line.msg !== msg || !match(line.fields)) return false
        resolve(line)
        return true
      })
    })
  }
}
