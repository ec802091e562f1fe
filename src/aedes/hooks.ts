/**
 * How the tier composes with the hooks already on an Aedes instance, the way a
 * fastify plugin composes: the instance's own `preConnect`, `authenticate` and
 * `authorizeSubscribe` run first and the tier's only after they allowed;
 * `authorizePublish` gets theirs to call in the terminal's order; deliveries
 * pass the tier's `authorizeForward` gate, then theirs. `detach` gives the
 * instance its own hooks back.
 */
import type {
  Aedes, AppPublish, AuthenticateHook, AuthorizeForwardHook, AuthorizePublishHook, AuthorizeSubscribeHook, PreConnectHook, ServerSubscribe
} from './internals.js'
import { hooksOf, isDefaultAuthorizeForward, routeSubscriptions, routeThroughBrokers } from './internals.js'

export interface TierHooks {
  preConnect: PreConnectHook
  authenticate: AuthenticateHook
  authorizeSubscribe: AuthorizeSubscribeHook
  /** Made with the instance's own hook, which it calls for each publish. */
  authorizePublish: (theirs: AuthorizePublishHook) => AuthorizePublishHook
  /** A gate in front of the instance's own `authorizeForward`. */
  authorizeForward: AuthorizeForwardHook
  /** `aedes.publish` of the deployment's own code (no client, outside `$SYS/`). */
  appPublish: AppPublish
  /** `aedes.subscribe` / `aedes.unsubscribe` of the deployment's own code (outside `$SYS/`). */
  serverSubscribe: ServerSubscribe
  /** Listeners of Aedes events, by event name. */
  listeners: Record<string, (...args: any[]) => void>
}

export interface AttachedHooks {
  /** The instance's own `authorizeForward`, undefined when it is Aedes' default (which forwards everything). */
  readonly ownForward: AuthorizeForwardHook | undefined
  detach: () => void
}

export function attachHooks (aedes: Aedes, ours: TierHooks): AttachedHooks {
  const hooks = hooksOf(aedes)
  // Read one by one: `publish`, `subscribe` and `unsubscribe` live on the prototype, and a spread would miss them.
  const original = {
    preConnect: hooks.preConnect,
    authenticate: hooks.authenticate,
    authorizeSubscribe: hooks.authorizeSubscribe,
    authorizePublish: hooks.authorizePublish,
    authorizeForward: hooks.authorizeForward,
    publish: hooks.publish,
    subscribe: hooks.subscribe,
    unsubscribe: hooks.unsubscribe
  }
  const own = (['publish', 'subscribe', 'unsubscribe'] as const).filter((name) => Object.hasOwn(hooks, name))
  hooks.preConnect = (client, packet, callback) => original.preConnect.call(aedes, client, packet, (error, ok) => {
    if (error !== null || !ok) return callback(error, ok)
    ours.preConnect(client, packet, callback)
  })
  hooks.authenticate = (client, username, password, done) => original.authenticate.call(aedes, client, username, password, (error, ok) => {
    if (error !== null || ok !== true) return done(error, ok)
    ours.authenticate(client, username, password, done)
  })
  hooks.authorizeSubscribe = (client, subscription, callback) => original.authorizeSubscribe.call(aedes, client, subscription, (error, allowed) => {
    if (error !== null || allowed == null) return callback(error, allowed)
    ours.authorizeSubscribe(client, allowed, callback)
  })
  hooks.authorizePublish = ours.authorizePublish(original.authorizePublish.bind(aedes))
  hooks.publish = routeThroughBrokers(original.publish, ours.appPublish)
  routeSubscriptions(hooks, ours.serverSubscribe)
  const theirForward = original.authorizeForward.bind(aedes)
  hooks.authorizeForward = (client, packet) => ours.authorizeForward(client, packet) == null ? null : theirForward(client, packet)
  for (const [event, listener] of Object.entries(ours.listeners)) aedes.on(event as 'ping', listener)
  return {
    ownForward: isDefaultAuthorizeForward(original.authorizeForward) ? undefined : theirForward,
    detach () {
      for (const [event, listener] of Object.entries(ours.listeners)) aedes.removeListener(event, listener)
      Object.assign(hooks, original)
      // Methods Aedes keeps on its prototype go back to being read from there.
      for (const name of ['publish', 'subscribe', 'unsubscribe'] as const) if (!own.includes(name)) delete (hooks as Partial<typeof hooks>)[name]
    }
  }
}
