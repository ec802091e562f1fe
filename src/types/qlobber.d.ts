// qlobber 8 ships no typings: only what the tier uses.
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
    /** Without `value`, every value of the topic. */
    remove (topic: string, value?: V): this
    test (topic: string, value: V): boolean
    /** The trie: a Map of words, whose `separator` entry holds the values stored at that level. */
    get_trie (): Map<string, unknown>
  }
}
