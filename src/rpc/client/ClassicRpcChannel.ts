/**
 * Calls classic C++ mprpc providers (or ours, in classic mode): one connection per call,
 * `uint32 LE headerSize | RpcHeader | args` out, the bare response in until the provider closes.
 * The address comes from a static host/port or from the classic ZooKeeper layout.
 *
 * Outcomes: EOF → the bytes read are the response (zero bytes is a legitimate all-default
 * message); a reset or other socket error → HANDLER_ERROR (the classic format's only failure
 * signal: our provider resets on unknown service/method, bad request and handler failure); no
 * answer by the deadline → DEADLINE_EXCEEDED (a classic C++ provider leaves an unknown service's
 * connection open). There are no retries: the format cannot tell whether the handler ran.
 */
import { EventLoop } from '../../net/EventLoop.js';
import { TcpClient } from '../../net/TcpClient.js';
import type { TcpConnection } from '../../net/TcpConnection.js';
import type { HostPort } from '../address.js';
import { RpcError } from '../errors.js';
import type { MethodDescriptor } from '../proto.js';
import { RpcController } from '../RpcController.js';
import { ZkSession } from '../registry/ZkSession.js';
import type { CallOptions } from '../types.js';
import { encodeClassicRequest } from '../wire/classicFrame.js';
import { ClassicDirectory } from './ClassicDirectory.js';
import { encodeRequest, type RpcCaller } from './RpcCaller.js';

export interface ClassicRpcChannelOptions {
  /** ZooKeeper "host:port": look providers up in the classic layout. Takes precedence over host/port. */
  zookeeper?: string;
  /** A fixed provider. */
  host?: string;
  port?: number;
  /** ZooKeeper session timeout. Default 30 000 ms. */
  zkSessionTimeoutMs?: number;
  /** Deadline of calls that set none. Default 5000 ms. */
  defaultTimeoutMs?: number;
  /** Largest response accepted. Default 16 MiB. */
  maxResponseBytes?: number;
  /** Check requests against the request type before sending. Default true. */
  verifyRequests?: boolean;
  loop?: EventLoop;
}

export class ClassicRpcChannel implements RpcCaller {
  private readonly loop: EventLoop;
  private readonly zk: ZkSession | null = null;
  private readonly directory: ClassicDirectory | null = null;
  private readonly target: HostPort | null = null;
  private readonly defaultTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly verifyRequests: boolean;
  private readonly active = new Set<TcpClient>();
  private closed = false;

  constructor(options: ClassicRpcChannelOptions) {
    this.loop = options.loop ?? EventLoop.default();
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 5000;
    this.maxResponseBytes = options.maxResponseBytes ?? 16 * 1024 * 1024;
    this.verifyRequests = options.verifyRequests ?? true;
    if (options.zookeeper !== undefined) {
      this.zk = new ZkSession({ connect: options.zookeeper, sessionTimeoutMs: options.zkSessionTimeoutMs });
      this.directory = new ClassicDirectory(this.zk);
    } else if (options.host !== undefined && options.port !== undefined) {
      this.target = { host: options.host, port: options.port };
    } else {
      throw new RpcError('CONFIG_ERROR', 'ClassicRpcChannel needs zookeeper, or host and port');
    }
  }

  async call<Res extends object = Record<string, unknown>>(
    method: MethodDescriptor,
    request: object,
    options?: CallOptions | RpcController,
  ): Promise<Res> {
    const controller = options instanceof RpcController ? options : null;
    controller?.reset();
    try {
      return (await this.attempt(method, request, options)) as Res;
    } catch (error) {
      const rpcError =
        error instanceof RpcError ? error : new RpcError('UNAVAILABLE', String(error), { cause: error });
      controller?.setFailed(rpcError);
      throw rpcError;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const client of this.active) {
      client.stop();
      client.connection?.forceClose();
    }
    await this.zk?.close();
  }

  private async attempt(method: MethodDescriptor, request: object, options?: CallOptions): Promise<object> {
    if (this.closed) throw new RpcError('CANCELLED', 'channel is closed', { mayHaveExecuted: false });
    const body = encodeRequest(method, request, this.verifyRequests);
    if (body instanceof RpcError) throw body;
    const start = Date.now();
    let deadline = start + (options?.timeoutMs ?? this.defaultTimeoutMs);
    if (options?.deadline !== undefined) deadline = Math.min(deadline, options.deadline);
    if (deadline <= start)
      throw new RpcError('DEADLINE_EXCEEDED', `${method.fullName}: deadline already passed`);
    const frame = encodeClassicRequest(method.serviceShortName, method.name, body);
    let target = this.target;
    if (target === null) {
      target = await withDeadline(
        this.directory!.lookup(method.serviceShortName, method.name),
        deadline,
        method,
      );
    }
    try {
      const bytes = await this.exchange(target, frame, deadline, method);
      try {
        return method.responseType.decode(bytes);
      } catch (error) {
        throw new RpcError('BAD_RESPONSE', `cannot decode ${method.responseType.name}: ${String(error)}`);
      }
    } catch (error) {
      if (error instanceof RpcError && error.code === 'UNAVAILABLE') {
        this.directory?.invalidate(method.serviceShortName, method.name);
      }
      throw error;
    }
  }

  /** One connection: send the request, read until the provider closes. */
  private exchange(
    target: HostPort,
    frame: Uint8Array,
    deadline: number,
    method: MethodDescriptor,
  ): Promise<globalThis.Buffer> {
    return new Promise((resolve, reject) => {
      const client = new TcpClient({
        host: target.host,
        port: target.port,
        loop: this.loop,
        name: 'classic-rpc',
        noDelay: true,
      });
      this.active.add(client);
      let socketError: Error | null = null;
      let settled = false;
      const finish = (error: RpcError | null, bytes?: globalThis.Buffer): void => {
        if (settled) return;
        settled = true;
        this.loop.cancel(timer);
        this.active.delete(client);
        client.stop();
        if (error !== null) {
          client.connection?.forceClose();
          reject(error);
        } else {
          resolve(bytes!);
        }
      };
      const timer = this.loop.runAfter(Math.max(0, deadline - Date.now()), () =>
        finish(new RpcError('DEADLINE_EXCEEDED', `${method.fullName}: no classic response by the deadline`)),
      );
      client.setConnectFailedCallback((error) =>
        finish(
          new RpcError('UNAVAILABLE', `cannot connect to ${target.host}:${target.port}: ${error.message}`, {
            cause: error,
            mayHaveExecuted: false,
          }),
        ),
      );
      client.setMessageCallback((conn: TcpConnection, input) => {
        if (input.readableBytes() > this.maxResponseBytes) {
          finish(new RpcError('PROTOCOL_ERROR', `classic response over ${this.maxResponseBytes} bytes`));
          conn.forceClose();
        }
      });
      client.setConnectionCallback((conn) => {
        if (conn.connected) {
          if (settled) {
            conn.forceClose();
            return;
          }
          conn.setErrorCallback((_c, error) => {
            socketError = error;
          });
          conn.send(frame);
          return;
        }
        if (socketError !== null) {
          finish(
            new RpcError(
              'HANDLER_ERROR',
              `classic provider reset the call (${socketError.message}): unknown service/method, bad request or handler failure`,
              {
                cause: socketError,
              },
            ),
          );
        } else {
          finish(null, conn.inputBuffer.retrieveAllAsBytes());
        }
      });
      client.connect();
    });
  }
}

function withDeadline<T>(promise: Promise<T>, deadline: number, method: MethodDescriptor): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new RpcError('DEADLINE_EXCEEDED', `${method.fullName}: ZooKeeper lookup not done by the deadline`),
        ),
      Math.max(0, deadline - Date.now()),
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
