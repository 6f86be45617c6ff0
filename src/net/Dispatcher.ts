/**
 * A key → handler table with a fallback for unknown keys (muduo's ProtobufDispatcher,
 * generalised): the business layer's msgid table is one of these.
 */
export class Dispatcher<Key, Args extends unknown[], Result = void> {
  private readonly handlers = new Map<Key, (...args: Args) => Result>();

  constructor(private defaultHandler: (key: Key, ...args: Args) => Result) {}

  /** Registers `handler` for `key`; registering a key twice is a programming error. */
  register(key: Key, handler: (...args: Args) => Result): this {
    if (this.handlers.has(key)) throw new Error(`handler already registered for ${String(key)}`);
    this.handlers.set(key, handler);
    return this;
  }

  unregister(key: Key): boolean {
    return this.handlers.delete(key);
  }

  setDefaultHandler(handler: (key: Key, ...args: Args) => Result): void {
    this.defaultHandler = handler;
  }

  has(key: Key): boolean {
    return this.handlers.has(key);
  }

  keys(): IterableIterator<Key> {
    return this.handlers.keys();
  }

  dispatch(key: Key, ...args: Args): Result {
    const handler = this.handlers.get(key);
    return handler === undefined ? this.defaultHandler(key, ...args) : handler(...args);
  }
}
