/** One call being served: the handler's CallContext, and what the session needs to answer it. */
import type { CallContext } from '../types.js';
import type { MethodEntry } from './MethodTable.js';

export class ServerCall implements CallContext {
  constructor(
    readonly entry: MethodEntry,
    readonly callId: number,
    readonly deadline: number,
    readonly peer: string,
    readonly protocol: 'native' | 'classic',
  ) {}

  get service(): string {
    return this.entry.descriptor.serviceName;
  }

  get method(): string {
    return this.entry.descriptor.name;
  }

  remainingMs(): number {
    return this.deadline === Number.POSITIVE_INFINITY
      ? this.deadline
      : Math.max(0, this.deadline - performance.now());
  }
}
