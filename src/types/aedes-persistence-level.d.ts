// aedes-persistence-level ships no typings (AEDES-NOTES): only what the server uses.
declare module 'aedes-persistence-level' {
  import type { Level } from 'level'
  interface LevelPersistence {
    setup: (broker: unknown) => Promise<void>
    destroy: () => Promise<void>
  }
  export default function persistence (db: Level<string, unknown>): LevelPersistence
}
