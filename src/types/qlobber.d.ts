// qlobber 8 ships no typings: only what the policy table uses.
declare module 'qlobber' {
  export interface QlobberOptions {
    separator?: string
    wildcard_one?: string
    wildcard_some?: string
    match_empty_levels?: boolean
    cache_splits?: number
  }
  export class Qlobber<V = unknown> {
    constructor (options?: QlobberOptions)
    add (topic: string, value: V): this
    match (topic: string): V[]
  }
}
