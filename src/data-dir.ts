/**
 * The node's data dir, checked before anything is stored in it, so that a
 * start that cannot use it says which folder and why (a file, read-only, in
 * use by another process), instead of what LevelDB happens to report
 * ("EEXIST … mkdir", "Iterator is not open").
 */
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { DualBrokerError } from './errors.js'

/** The data dir cannot be used; the message names it and the cause. */
export class DataDirError extends DualBrokerError {
  override name = 'DataDirError'
  constructor (message: string, options?: ErrorOptions) {
    super('DUALBROKER_ERR_DATA_DIR', message, options)
  }
}

/** Written by the process that holds the data dir: only the message of a second process reads it. */
const PID_FILE = 'aedes-dual-broker.pid'

export interface DataDir {
  /** The pending store opened: this process holds the data dir now, and says so in the PID file. */
  claim: () => void
  /** A start that failed: a pending store locked by another process is named as such, with its PID. */
  explain: (error: unknown) => unknown
  /** Removes the PID file (the store is closed by its owner). */
  release: () => void
}

/**
 * Checks the folder before anything opens it. The lock that keeps two
 * processes out is the pending store's own (LevelDB's LOCK file, `<data>/pending`);
 * the PID file only tells a second process who the first one is.
 */
export function openDataDir (path: string): DataDir {
  ensureFolder(path)
  probeWritable(path)
  const pidFile = join(path, PID_FILE)
  return {
    claim: () => { writeFileSync(pidFile, `${process.pid}\n`) },
    explain: (error) => isLocked(error) ? new DataDirError(`data dir ${path} is in use by another process (${holder(path)})`, { cause: error }) : error,
    release: () => {
      try {
        if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) unlinkSync(pidFile)
      } catch {}
    }
  }
}

function isLocked (error: unknown): boolean {
  for (let cause = error as { code?: unknown, cause?: unknown } | undefined; cause != null; cause = cause.cause as typeof cause) {
    if (cause.code === 'LEVEL_LOCKED') return true
  }
  return false
}

function ensureFolder (path: string): void {
  let isFolder: boolean
  try {
    isFolder = statSync(path).isDirectory()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw failure(path, err)
    try {
      mkdirSync(path, { recursive: true })
    } catch (err) {
      throw failure(path, err)
    }
    return
  }
  if (!isFolder) throw new DataDirError(`data dir ${path} is a file, not a folder`)
}

/** Root can write into a folder of mode 0555, but not onto a read-only mount: a real write tells both. */
function probeWritable (path: string): void {
  const probe = join(path, `.write-test-${process.pid}`)
  try {
    writeFileSync(probe, '')
    unlinkSync(probe)
  } catch (err) {
    throw failure(path, err)
  }
}

function failure (path: string, err: unknown): DataDirError {
  const code = (err as NodeJS.ErrnoException).code
  switch (code) {
    case 'EROFS':
    case 'EACCES':
    case 'EPERM':
      return new DataDirError(`data dir ${path} is read-only (${code})`, { cause: err })
    case 'ENOTDIR':
    case 'EEXIST':
      return new DataDirError(`data dir ${path}: a part of the path is a file, not a folder (${dirname(path)})`, { cause: err })
    case 'ENOSPC':
      return new DataDirError(`data dir ${path}: the disk is full`, { cause: err })
    default:
      return new DataDirError(`data dir ${path} cannot be used: ${(err as Error).message}`, { cause: err })
  }
}

function holder (path: string): string {
  try {
    const pid = Number(readFileSync(join(path, PID_FILE), 'utf8').trim())
    if (Number.isInteger(pid) && pid > 0) return `PID ${pid}`
  } catch {}
  return 'its PID is not known'
}
