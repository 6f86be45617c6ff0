/**
 * A presence key's value is `serverId|epoch`: the server holding the user and its incarnation
 * (RedisCluster). Routing needs only the server; a value without '|' is a bare id.
 */
export function serverOfPresence(value: string): string {
  const bar = value.lastIndexOf('|');
  return bar < 0 ? value : value.slice(0, bar);
}
