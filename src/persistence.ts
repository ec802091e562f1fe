import aedesPersistence from 'aedes-persistence'

// A CommonJS module whose typings declare an ES default export: at run time the import is the factory itself.
const memory = aedesPersistence as unknown as () => Persistence

/** The part of an Aedes persistence this wrapper touches. */
interface Persistence {
  setup: (broker: unknown) => Promise<void>
  destroy: () => Promise<void>
}

/**
 * Aedes asks its persistence on every QoS 1/2 delivery to a terminal (which
 * message id went out, and when it was acked). A clean session's in-flight
 * state ends with its connection, so for clean sessions those calls go to
 * Aedes' in-memory persistence; everything else — persistent sessions,
 * subscriptions, wills, QoS 2 — stays in LevelDB in the data dir.
 */
const IN_FLIGHT = new Set(['outgoingUpdate', 'outgoingClearMessageId', 'outgoingStream'])

export function cleanSessionsInMemory<P extends Persistence> (durable: P): P {
  const volatile = memory()
  // Built once: the wrappers sit on the delivery path of every QoS 1/2 message.
  const routed = new Map<string, (client: { clean?: boolean } | undefined, ...rest: unknown[]) => unknown>()
  for (const method of IN_FLIGHT) {
    const inMemory = Reflect.get(volatile, method) as (...args: unknown[]) => unknown
    const onDisk = Reflect.get(durable, method) as (...args: unknown[]) => unknown
    routed.set(method, (client, ...rest) => client?.clean === true
      ? inMemory.call(volatile, client, ...rest)
      : onDisk.call(durable, client, ...rest))
  }
  const setup = async (broker: unknown): Promise<void> => {
    await volatile.setup(broker)
    await durable.setup(broker)
  }
  return new Proxy(durable, {
    get (target, property, receiver) {
      if (typeof property === 'string') {
        const wrapper = routed.get(property)
        if (wrapper !== undefined) return wrapper
        if (property === 'setup') return setup
      }
      const value: unknown = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}
