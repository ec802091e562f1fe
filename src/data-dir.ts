/**
 * The node's data dir, checked before anything is stored in it, so that a
 * start that cannot use it says which folder and why (a file, read-only, in
 * use by another process), instead of what LevelDB or Aedes' persistence
 * happen to report ("EEXIST … mkdir", "Iterator is not open").
 */
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Level } from 'level'

/** The data dir cannot be used; the message names it and the cause. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError'
  readonly code = 'DATA_DIR'
}

/** Written by the process that holds the data dir: only the message of a second process reads it. */
const PID_FILE = 'aedes-dual-broker.pid'

export interface DataDir {
  /** Aedes' own persistence (sessions, subscriptions, wills), open. */
  readonly aedes: Level<string, unknown>
  /** Removes the PID file (the databases are closed by their owners). */
  release: () => void
}

export async function openDataDir (path: string): Promise<DataDir> {
  ensureFolder(path)
  probeWritable(path)
  const aedes = new Level<string, unknown>(join(path, 'aedes'))
  try {
    await aedes.open()
  } catch (err) {
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    // LevelDB's LOCK file is what keeps two processes out; the PID file only tells who the other one is.
    if (cause?.code === 'LEVEL_LOCKED') throw new DataDirError(`data dir ${path} is in use by another process (${holder(path)})`)
    throw new DataDirError(`data dir ${path}: Aedes' session store cannot be opened: ${cause?.message ?? (err as Error).message}`, { cause: err })
  }
  const pidFile = join(path, PID_FILE)
  writeFileSync(pidFile, `${process.pid}\n`)
  return {
    aedes,
    release: () => {
      try {
        if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) unlinkSync(pidFile)
      } catch {}
    }
  }
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
