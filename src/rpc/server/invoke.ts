/** What both wire formats share about running a handler: calling it, and encoding its outcome. */
import { isRpcError } from '../errors.js';
import { encodeOwned } from '../wire/messageWriter.js';
import { WireStatus } from '../wire/nativeFrame.js';
import type { MethodEntry } from './MethodTable.js';
import type { ServerCall } from './ServerCall.js';

export interface Failure {
  status: number;
  text: string;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/** A handler throwing RpcError('BAD_REQUEST') rejects its input; anything else is a handler error. */
export function failureOf(error: unknown): Failure {
  if (isRpcError(error) && error.code === 'BAD_REQUEST') {
    return { status: WireStatus.BAD_REQUEST, text: error.message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { status: WireStatus.HANDLER_ERROR, text: `handler failed: ${message}` };
}

/**
 * The failure to report instead of a handler's value, or null when it can be encoded: verification
 * turns a value of the wrong shape into a HANDLER_ERROR rather than silently wrong bytes.
 */
export function checkResult(entry: MethodEntry, value: unknown, verify: boolean): Failure | null {
  const type = entry.descriptor.responseType;
  if (typeof value !== 'object' || value === null) {
    return { status: WireStatus.HANDLER_ERROR, text: `handler returned ${String(value)}, not a message` };
  }
  if (verify) {
    const problem = type.verify(value as Record<string, unknown>);
    if (problem !== null) {
      return { status: WireStatus.HANDLER_ERROR, text: `handler returned a bad ${type.name}: ${problem}` };
    }
  }
  return null;
}

/** The failure to report for a value protobufjs could not encode. */
export function unencodableResult(entry: MethodEntry, error: unknown): Failure {
  return {
    status: WireStatus.HANDLER_ERROR,
    text: `cannot encode ${entry.descriptor.responseType.name}: ${String(error)}`,
  };
}

/** A handler's value encoded in a buffer of its own, or the failure to report instead. */
export function encodeResult(
  entry: MethodEntry,
  value: unknown,
  verify: boolean,
): globalThis.Buffer | Failure {
  const failure = checkResult(entry, value, verify);
  if (failure !== null) return failure;
  try {
    return encodeOwned(entry.descriptor.responseType, value as object);
  } catch (error) {
    return unencodableResult(entry, error);
  }
}

export interface CallSink {
  /** Handler finished: `value` still has to be encoded. */
  succeed(call: ServerCall, value: unknown): void;
  fail(call: ServerCall, error: unknown): void;
}

/** Runs the handler and routes its outcome, synchronous or not, to `sink`. */
export function invoke(sink: CallSink, call: ServerCall, request: object): void {
  let result: unknown;
  try {
    result = call.entry.handler(request, call);
  } catch (error) {
    sink.fail(call, error);
    return;
  }
  if (isThenable(result)) {
    result.then(
      (value) => sink.succeed(call, value),
      (error: unknown) => sink.fail(call, error),
    );
  } else {
    sink.succeed(call, result);
  }
}
