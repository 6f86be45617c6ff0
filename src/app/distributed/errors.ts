/**
 * Business errors across the RPC hop, typed both ways: a provider turns a StoreError into the
 * reply's errno; the remote service turns a non-zero errno back into the same StoreError, and
 * an RPC failure (no provider, deadline, lost connection) into UNAVAILABLE (errno 9, "retry").
 */
import { isRpcError } from '../../rpc/index.js';
import { Errno, errmsgFor } from '../protocol/errno.js';
import { errnoOf } from '../service/errnoOf.js';
import { StoreError, type StoreErrorCode } from '../store/errors.js';

export interface ReplyStatus {
  errno: number;
  errmsg: string;
}

export const OK_STATUS: ReplyStatus = { errno: 0, errmsg: '' };

/** What a provider puts in a reply for a failure of the in-process service. */
export function statusOf(error: unknown): ReplyStatus {
  const errno = errnoOf(error);
  return { errno, errmsg: error instanceof Error ? error.message : errmsgFor(errno) };
}

const kCodeOfErrno: Readonly<Record<number, StoreErrorCode>> = {
  [Errno.CONFLICT]: 'CONFLICT',
  [Errno.NOT_FOUND]: 'NOT_FOUND',
};

/** The StoreError a failed reply stands for. */
export function errorOfStatus(status: ReplyStatus): StoreError {
  return new StoreError(
    kCodeOfErrno[status.errno] ?? 'UNAVAILABLE',
    status.errmsg || errmsgFor(status.errno),
  );
}

/** Throws the reply's error when it carries one. */
export function checkReply<R extends ReplyStatus>(reply: R): R {
  if (reply.errno !== 0) throw errorOfStatus(reply);
  return reply;
}

/** An RPC that failed as a call (not as business) is the store being unavailable to the caller. */
export function errorOfCall(error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  const detail = isRpcError(error) ? `${error.code}: ${error.message}` : String(error);
  return new StoreError('UNAVAILABLE', `service call failed (${detail})`, { cause: error });
}
