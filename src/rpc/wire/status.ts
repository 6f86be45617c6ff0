/** RpcMeta.status numbers ↔ RpcErrorCode. */
import type { RpcErrorCode } from '../errors.js';
import { WireStatus } from './nativeFrame.js';

const CODE_BY_STATUS: readonly RpcErrorCode[] = [
  'HANDLER_ERROR', // 0 = OK never reaches here; a reply with OK but no body is still a success
  'UNKNOWN_SERVICE',
  'UNKNOWN_METHOD',
  'BAD_REQUEST',
  'HANDLER_ERROR',
  'DEADLINE_EXCEEDED',
  'UNAVAILABLE',
  'RESOURCE_EXHAUSTED',
];

/** An unknown (newer) status number reads as a handler error: the call failed on the provider. */
export function codeOfStatus(status: number): RpcErrorCode {
  return CODE_BY_STATUS[status] ?? 'HANDLER_ERROR';
}

export function statusOfCode(code: RpcErrorCode): number {
  switch (code) {
    case 'UNKNOWN_SERVICE':
    case 'UNKNOWN_METHOD':
    case 'BAD_REQUEST':
    case 'HANDLER_ERROR':
    case 'DEADLINE_EXCEEDED':
    case 'UNAVAILABLE':
    case 'RESOURCE_EXHAUSTED':
      return WireStatus[code];
    default:
      return WireStatus.HANDLER_ERROR;
  }
}
