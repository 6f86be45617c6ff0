import { Errno } from '../protocol/errno.js';
import { StoreError } from '../store/errors.js';

/** Maps a failure from the data layer to the errno the client sees; unexpected ones are 9. */
export function errnoOf(error: unknown): number {
  if (error instanceof StoreError) {
    switch (error.code) {
      case 'CONFLICT':
        return Errno.CONFLICT;
      case 'NOT_FOUND':
        return Errno.NOT_FOUND;
      default:
        return Errno.UNAVAILABLE;
    }
  }
  return Errno.UNAVAILABLE;
}
