// Neither persistence ships typings: what the tests use of them.
declare module 'aedes-persistence-level' {
  import type { AedesOptions } from 'aedes'
  export default function persistence (db: unknown): NonNullable<AedesOptions['persistence']>
}
declare module 'aedes-persistence-redis' {
  import type { AedesOptions } from 'aedes'
  export default function persistence (options: { host: string, port: number }): NonNullable<AedesOptions['persistence']>
}
