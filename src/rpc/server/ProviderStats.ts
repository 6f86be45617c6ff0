/** Provider-wide counters: the load published to the registry and reported by `RpcProvider.stats`. */
export class ProviderStats {
  /** Calls whose handler has started and not yet answered. */
  inFlight = 0;
  /** Calls answered (successfully or not) since start. */
  completed = 0;
  /** Calls that failed (any status but OK). */
  failed = 0;
  /** Connections by wire format. */
  nativeConnections = 0;
  classicConnections = 0;
}
