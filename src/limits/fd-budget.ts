/**
 * File descriptors: each terminal costs three (its socket and its two upstream
 * sockets). At the process's limit libuv accepts and closes new connections
 * by itself (its EMFILE "reserve descriptor" trick) and Node never hears of
 * them, so the tier keeps its own count and refuses a connection, logged and
 * counted, before the limit is reached.
 */
import { readdirSync, readFileSync } from 'node:fs'
import type { Logger } from '../logger.js'

/** Descriptors one terminal holds. */
export const FDS_PER_TERMINAL = 3
/** Kept free for what is not a terminal: the store's files, log output, the status server, reconnects. */
const RESERVE = 32
/** The actual count is read at most this often (a directory listing of every descriptor). */
const REMEASURE_MS = 250

/** The soft limit on open files (`ulimit -n`, systemd `LimitNOFILE`), where the system tells it (Linux). */
export function readFdLimit (): number | undefined {
  try {
    const line = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return line === null || line[1] === 'unlimited' ? undefined : Number(line[1])
  } catch {
    return undefined
  }
}

/** Open descriptors; at the limit the listing itself cannot open one, and that answer is "all of them". */
export function countOpenFds (limit: number): number {
  try {
    return readdirSync('/proc/self/fd').length - 1 // the listing's own descriptor
  } catch (error) {
    if (isFdExhaustion(error)) return limit
    throw error
  }
}

/** True for an error (or its message) that says the process or the system ran out of descriptors. */
export function isFdExhaustion (error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'EMFILE' || code === 'ENFILE') return true
  const text = typeof error === 'string' ? error : (error as { message?: unknown } | null)?.message
  return typeof text === 'string' && /\bE[MN]FILE\b/.test(text)
}

/**
 * The descriptors left for new terminals. Counted, not listed: each admitted
 * connection adds three to the last measured figure, and only when that says
 * "full" is the real count read again (closed connections free descriptors
 * the estimate does not subtract).
 */
export class FdBudget {
  private estimate: number
  private measuredAt = 0
  /** Connections admitted that have not sent CONNECT: they hold one descriptor now and will need two more. */
  private pending = 0

  constructor (readonly limit: number, private readonly count: () => number = () => countOpenFds(limit)) {
    this.estimate = count()
  }

  /** One more terminal fits: its descriptors are counted from now on. */
  admit (): boolean {
    if (this.estimate + FDS_PER_TERMINAL > this.limit - RESERVE) {
      const now = performance.now()
      if (now - this.measuredAt < REMEASURE_MS) return false
      this.measuredAt = now
      this.estimate = this.count() + (FDS_PER_TERMINAL - 1) * this.pending
      if (this.estimate + FDS_PER_TERMINAL > this.limit - RESERVE) return false
    }
    this.estimate += FDS_PER_TERMINAL
    this.pending++
    return true
  }

  /** An admitted connection sent CONNECT: its upstream sockets follow. */
  connected (): void {
    this.pending--
  }

  /** An admitted connection closed before CONNECT: its one descriptor is free, and it needs no more. */
  closedBeforeConnect (): void {
    this.pending--
    this.estimate -= FDS_PER_TERMINAL
  }
}

/** The budget for this process, with a warning when the limit is below what `maxConnections` needs. */
export function fdBudget (maxConnections: number, listeners: number, logger: Logger): FdBudget | undefined {
  const limit = readFdLimit()
  if (limit === undefined) return undefined
  const needed = maxConnections * FDS_PER_TERMINAL * listeners
  if (maxConnections > 0 && limit < needed) {
    logger.warn({ limit, needed, maxConnections, listeners },
      'file descriptor limit is below what limits.maxConnections needs (3 per terminal): raise LimitNOFILE or ulimit -n')
  }
  return new FdBudget(limit)
}
