import { Qlobber } from 'qlobber'
import type { MessageHandler } from '../aedes/internals.js'

/**
 * The deployment's own subscriptions (`aedes.subscribe(filter, handler)`): the
 * handlers by filter, matched as Aedes' mq matches them, and how many handlers
 * each filter has, so that the node subscribes a filter upstream once and
 * unsubscribes it with its last handler.
 */
export class ServerSubscriptions {
  private readonly matcher = new Qlobber<MessageHandler>({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
  private readonly handlers = new Map<string, number>()

  /** The filters with at least one handler: what the node holds at the brokers. */
  get filters (): IterableIterator<string> {
    return this.handlers.keys()
  }

  /** True when the filter is new: the node subscribes it upstream. */
  add (filter: string, handler: MessageHandler): boolean {
    this.matcher.add(filter, handler)
    const count = this.handlers.get(filter) ?? 0
    this.handlers.set(filter, count + 1)
    return count === 0
  }

  /** True when the filter's last handler went: the node unsubscribes it upstream. */
  remove (filter: string, handler: MessageHandler): boolean {
    const count = this.handlers.get(filter)
    if (count === undefined || !this.matcher.test(filter, handler)) return false
    this.matcher.remove(filter, handler)
    if (count > 1) {
      this.handlers.set(filter, count - 1)
      return false
    }
    this.handlers.delete(filter)
    return true
  }

  match (topic: string): MessageHandler[] {
    return this.matcher.match(topic)
  }
}
