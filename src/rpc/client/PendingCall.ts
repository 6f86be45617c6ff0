/** One call from `RpcChannel.call` until it settles, across attempts. Also its deadline-heap node. */
import { RpcError } from '../errors.js';
import type { MethodDescriptor } from '../proto.js';
import type { RpcController } from '../RpcController.js';
import type { DeadlineEntry, DeadlineList } from './DeadlineQueue.js';
import { encodeRequest } from './RpcCaller.js';

export const CallState = {
  /** Waiting for a provider list, a connection or a free in-flight slot. */
  Queued: 0,
  /** Its frame went to a connection: the provider may be running it. */
  Sent: 1,
  Done: 2,
} as const;
export type CallState = (typeof CallState)[keyof typeof CallState];

export interface CallEndpoint {
  readonly key: string;
}

/** Where a sent call sits, so that a deadline can take it back. */
export interface CallHolder {
  forget(call: PendingCall): void;
}

export class PendingCall implements DeadlineEntry {
  deadline: number;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  deadlineList: DeadlineList | null = null;
  state: CallState = CallState.Queued;
  /** Id on its current connection (0 when not on one). */
  callId = 0;
  attempts = 0;
  /** CallOptions.affinity: the provider is chosen by rendezvous hashing of this key. */
  affinity: string | null = null;
  /** The provider of the latest attempt, avoided by the next one. */
  lastEndpoint: CallEndpoint | null = null;
  /** The connection the latest attempt went to. */
  holder: CallHolder | null = null;
  /** The error of the latest failed attempt, reported if no later attempt can be made. */
  lastError: RpcError | null = null;
  resolve!: (value: object) => void;
  reject!: (error: RpcError) => void;

  /**
   * The request's bytes, once encoded on their own: a call that has to wait is encoded when it
   * starts waiting, so that later changes to the request object do not reach the wire. A call
   * written at once is encoded straight into the connection's output (and again if retried).
   */
  body: Uint8Array | null = null;

  constructor(
    readonly method: MethodDescriptor,
    readonly request: object,
    deadline: number,
    readonly idempotent: boolean,
    readonly controller: RpcController | null,
  ) {
    this.deadline = deadline;
  }

  /** Encodes `body` now if it is not yet; false (and `lastError` set) when the request cannot be encoded. */
  snapshot(): boolean {
    if (this.body !== null) return true;
    const body = encodeRequest(this.method, this.request, false);
    if (body instanceof RpcError) {
      this.lastError = body;
      return false;
    }
    this.body = body;
    return true;
  }

  /** Milliseconds left, for the wire's timeout_ms (0 = none). */
  wireTimeoutMs(now: number): number {
    if (this.deadline === Number.POSITIVE_INFINITY) return 0;
    return Math.min(0xffffffff, Math.max(1, Math.ceil(this.deadline - now)));
  }
}
