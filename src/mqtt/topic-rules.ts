/**
 * What a broker refuses in a topic or a filter: the tier checks the
 * deployment's own `aedes.publish` and `aedes.subscribe` against it, since a
 * broker closes the connection that sends one, and the node's session would
 * never stay up.
 */

/** Why `topic` cannot be published to, or undefined: [MQTT-4.7.3-1] at least one character, [MQTT-3.3.2-2] no wildcard. */
export function invalidTopic (topic: unknown): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'a topic is at least one character [MQTT-4.7.3-1]'
  if (topic.includes('+') || topic.includes('#')) return `a publish topic has no wildcard [MQTT-3.3.2-2]: ${topic}`
  return undefined
}

/** Why `filter` cannot be subscribed, or undefined: [MQTT-4.7.3-1], `#` alone and last [MQTT-4.7.1-2], `+` alone in its level [MQTT-4.7.1-3]. */
export function invalidFilter (filter: unknown): string | undefined {
  if (typeof filter !== 'string' || filter.length === 0) return 'a filter is at least one character [MQTT-4.7.3-1]'
  const levels = filter.split('/')
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return `'#' stands alone, last [MQTT-4.7.1-2]: ${filter}`
    if (level.includes('+') && level !== '+') return `'+' stands alone in its level [MQTT-4.7.1-3]: ${filter}`
  }
  return undefined
}
