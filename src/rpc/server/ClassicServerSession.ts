/**
 * The provider side of one classic mprpc connection (docs/PROTOCOL.md §10): read
 * `uint32 LE headerSize | RpcHeader | args`, run the handler, write the bare response and close.
 * Every failure (bad bytes, unknown service or method, handler error) resets the connection:
 * the format has no error reply, and a reset is what makes the classic consumer report failure.
 */
import type { Buffer as NetBuffer } from '../../net/Buffer.js';
import type { TcpConnection } from '../../net/TcpConnection.js';
import { type ClassicHeader, decodeClassicHeader, MAX_CLASSIC_HEADER } from '../wire/classicFrame.js';
import { type CallSink, encodeResult, invoke } from './invoke.js';
import type { MethodEntry, MethodTable } from './MethodTable.js';
import type { ProviderStats } from './ProviderStats.js';
import { ServerCall } from './ServerCall.js';

export interface ClassicSessionOptions {
  maxFrameBytes: number;
  verifyResponses: boolean;
  /** Called for failures, for logging; the connection is reset either way. */
  onError?: (peer: string, reason: string) => void;
}

export class ClassicServerSession implements CallSink {
  private header: ClassicHeader | null = null;
  private entry: MethodEntry | null = null;
  private done = false;
  private closed = false;

  constructor(
    private readonly conn: TcpConnection,
    private readonly table: MethodTable,
    private readonly stats: ProviderStats,
    private readonly options: ClassicSessionOptions,
  ) {}

  start(input: NetBuffer): void {
    this.stats.classicConnections++;
    this.conn.setMessageCallback(this.onMessage);
    this.onMessage(this.conn, input);
  }

  onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.classicConnections--;
  }

  private readonly onMessage = (_conn: TcpConnection, input: NetBuffer): void => {
    if (this.done) {
      input.retrieveAll(); // one call per connection: anything after it is ignored
      return;
    }
    if (this.header === null && !this.readHeader(input)) return;
    const header = this.header!;
    if (input.readableBytes() < header.argsSize) return;
    this.done = true;
    const args = input.retrieveAsBytes(header.argsSize);
    input.retrieveAll();
    const entry = this.entry!;
    let request: object;
    try {
      request = entry.descriptor.requestType.decode(args);
    } catch (error) {
      this.failNow(`cannot decode ${entry.descriptor.requestType.name}: ${String(error)}`);
      return;
    }
    this.stats.inFlight++;
    const call = new ServerCall(
      entry,
      0,
      Number.POSITIVE_INFINITY,
      this.conn.peerAddress.toIpPort(),
      'classic',
    );
    invoke(this, call, request);
  };

  /** Parses size and header once they are complete; false while more bytes are needed. */
  private readHeader(input: NetBuffer): boolean {
    if (input.readableBytes() < 4) return false;
    const size = input.peek(4).readUInt32LE(0);
    if (size === 0 || size > MAX_CLASSIC_HEADER) {
      this.failNow(`header size ${size} outside 1..${MAX_CLASSIC_HEADER}`);
      return false;
    }
    if (input.readableBytes() < 4 + size) return false;
    const bytes = input.peek(4 + size);
    let header: ClassicHeader;
    try {
      header = decodeClassicHeader(bytes, 4, 4 + size);
    } catch (error) {
      this.failNow(`bad RpcHeader: ${(error as Error).message}`);
      return false;
    }
    input.retrieve(4 + size);
    if (header.argsSize > this.options.maxFrameBytes) {
      this.failNow(`args_size ${header.argsSize} over ${this.options.maxFrameBytes}`);
      return false;
    }
    const methods = this.table.service(header.service);
    const entry = methods?.get(header.method);
    if (entry === undefined) {
      this.failNow(
        methods === undefined
          ? `unknown service '${header.service}'`
          : `unknown method '${header.method}' of ${header.service}`,
      );
      return false;
    }
    this.header = header;
    this.entry = entry;
    return true;
  }

  succeed(call: ServerCall, value: unknown): void {
    this.stats.inFlight--;
    this.stats.completed++;
    const response = encodeResult(call.entry, value, this.options.verifyResponses);
    if (!globalThis.Buffer.isBuffer(response)) {
      this.stats.failed++;
      this.options.onError?.(call.peer, response.text);
      if (!this.closed) this.conn.reset();
      return;
    }
    if (this.closed) return;
    // The classic consumer reads until EOF: the response, then a FIN after it is flushed.
    this.conn.send(response);
    this.conn.shutdown();
  }

  fail(call: ServerCall, error: unknown): void {
    this.stats.inFlight--;
    this.stats.completed++;
    this.stats.failed++;
    this.options.onError?.(
      call.peer,
      `handler failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    if (!this.closed) this.conn.reset();
  }

  private failNow(reason: string): void {
    this.done = true;
    this.stats.failed++;
    this.options.onError?.(this.conn.peerAddress.toIpPort(), reason);
    this.conn.reset();
  }
}
