/** Topics under this prefix are the tier's own status topics: served locally, never mirrored upstream. */
export const LOCAL_TOPIC_PREFIX = '$SYS/dual-broker/'

export function isLocalTopic (topic: string): boolean {
  return topic.startsWith(LOCAL_TOPIC_PREFIX)
}
