import { Qlobber } from 'qlobber'
import type { MessageHandler, PublishPacket } from '../aedes/internals.js'

/**
 * The deployment's own subscriptions (`aedes.subscribe(filter, handler)`): the
 * handlers by filter, matched as Aedes' mq matches them, so that the node
 * subscribes a filter upstream with its first handler and unsubscribes it
 * with its last.
 */
export class ServerSubscriptions {
  private readonly matcher = new Qlobber<MessageHandler>({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
  private readonly byFilter = new Map<string, Set<MessageHandler>>()

  /** The filters with at least one handler: what the node holds at the brokers. */
  get filters (): IterableIterator<string> {
    return this.byFilter.keys()
  }

  /** True when the filter is new: the node subscribes it upstream. */
  add (filter: string, handler: MessageHandler): boolean {
    let handlers = this.byFilter.get(filter)
    const added = handlers === undefined
    if (handlers === undefined) this.byFilter.set(filter, handlers = new Set())
    if (!handlers.has(handler)) this.matcher.add(filter, handler)
    handlers.add(handler)
    return added
  }

  /** True when the filter's last handler went: the node unsubscribes it upstream. */
  remove (filter: string, handler: MessageHandler): boolean {
    const handlers = this.byFilter.get(filter)
    if (handlers === undefined || !handlers.delete(handler)) return false
    this.matcher.remove(filter, handler)
    if (handlers.size > 0) return false
    this.byFilter.delete(filter)
    return true
  }

  /**
   * To every handler whose filter matches, once; `handled` after the last one
   * called back, as Aedes' mq calls back once every handler did.
   */
  deliver (message: PublishPacket, handled: () => void): void {
    const handlers = this.matcher.match(message.topic)
    if (handlers.length === 0) return handled()
    let remaining = handlers.length
    const each = (): void => { if (--remaining === 0) handled() }
    for (const handler of handlers) handler(message, each)
  }
}
