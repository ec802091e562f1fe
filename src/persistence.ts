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
  return new Proxy(durable, {
    get (target, property, receiver) {
      if (typeof property === 'string' && IN_FLIGHT.has(property)) {
        return (client: { clean?: boolean } | undefined, ...rest: unknown[]) => {
          const owner = client?.clean === true ? volatile : target
          return (Reflect.get(owner, property) as (...args: unknown[]) => unknown).call(owner, client, ...rest)
        }
      }
      if (property === 'setup') {
        return async (broker: unknown) => {
          await volatile.setup(broker)
          await target.setup(broker)
        }
      }
      const value: unknown = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}
