/** The provider's dispatch table: service name (full or short) → method name → handler. */
import { RpcError } from '../errors.js';
import type { MethodDescriptor, ServiceDescriptor } from '../proto.js';
import type { Handler } from '../types.js';

export interface MethodEntry {
  readonly descriptor: MethodDescriptor;
  readonly handler: Handler<object, object>;
}

export class MethodTable {
  private readonly byName = new Map<string, Map<string, MethodEntry>>();
  private readonly shortNames = new Map<string, string>();
  private readonly described: ServiceDescriptor[] = [];

  /** Registers every method of `service`; `impl` must have exactly one handler per method. */
  add(service: ServiceDescriptor, impl: Readonly<Record<string, unknown>>): void {
    if (this.byName.has(service.fullName)) {
      throw new RpcError('CONFIG_ERROR', `service ${service.fullName} is already published`);
    }
    // The classic wire and ZooKeeper layout address services by short name only.
    const clash = this.shortNames.get(service.shortName);
    if (clash !== undefined) {
      throw new RpcError(
        'CONFIG_ERROR',
        `services ${clash} and ${service.fullName} share the short name ${service.shortName}`,
      );
    }
    const methods = new Map<string, MethodEntry>();
    for (const [name, descriptor] of service.methods) {
      const handler = impl[name];
      if (typeof handler !== 'function') {
        throw new RpcError('CONFIG_ERROR', `${service.fullName}: no handler for method ${name}`);
      }
      methods.set(name, { descriptor, handler: handler as Handler<object, object> });
    }
    for (const name of Object.keys(impl)) {
      if (!service.methods.has(name)) {
        throw new RpcError('CONFIG_ERROR', `${service.fullName} has no method '${name}' (handler given)`);
      }
    }
    this.byName.set(service.fullName, methods);
    this.byName.set(service.shortName, methods);
    this.shortNames.set(service.shortName, service.fullName);
    this.described.push(service);
  }

  /** The methods of a service by full or short name. */
  service(name: string): ReadonlyMap<string, MethodEntry> | undefined {
    return this.byName.get(name);
  }

  services(): readonly ServiceDescriptor[] {
    return this.described;
  }
}
