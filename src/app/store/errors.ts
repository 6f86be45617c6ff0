/**
 * Typed failures of the data layer. The business layer maps them to protocol errnos:
 * CONFLICT → 7, NOT_FOUND → 6, UNAVAILABLE / INTERNAL → 9 (the request may be retried).
 */
export type StoreErrorCode = 'CONFLICT' | 'NOT_FOUND' | 'UNAVAILABLE' | 'INTERNAL';

export class StoreError extends Error {
  override readonly name = 'StoreError';

  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

/** Message of an unknown thrown value, for wrapping driver errors. */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
