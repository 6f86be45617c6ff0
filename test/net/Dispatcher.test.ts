import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/net/Dispatcher.js';

describe('Dispatcher', () => {
  function make() {
    const unknown: Array<[number, string]> = [];
    const dispatcher = new Dispatcher<number, [string], string>((key, arg) => {
      unknown.push([key, arg]);
      return `default:${key}:${arg}`;
    });
    return { dispatcher, unknown };
  }

  it('dispatches to the registered handler with the arguments and returns its result', () => {
    const { dispatcher, unknown } = make();
    dispatcher.register(1, (arg) => `one:${arg}`).register(2, (arg) => `two:${arg}`);
    expect(dispatcher.dispatch(1, 'a')).toBe('one:a');
    expect(dispatcher.dispatch(2, 'b')).toBe('two:b');
    expect(unknown).toEqual([]);
    expect(dispatcher.has(1)).toBe(true);
    expect([...dispatcher.keys()]).toEqual([1, 2]);
  });

  it('falls back to the default handler for unknown keys, passing the key', () => {
    const { dispatcher, unknown } = make();
    dispatcher.register(1, () => 'one');
    expect(dispatcher.dispatch(99, 'x')).toBe('default:99:x');
    expect(unknown).toEqual([[99, 'x']]);
    expect(dispatcher.has(99)).toBe(false);
  });

  it('throws when a key is registered twice and keeps the first handler', () => {
    const { dispatcher } = make();
    dispatcher.register(7, () => 'first');
    expect(() => dispatcher.register(7, () => 'second')).toThrow(/already registered for 7/);
    expect(dispatcher.dispatch(7, '')).toBe('first');
  });

  it('unregister removes a handler (reporting whether it existed) and allows re-registering', () => {
    const { dispatcher } = make();
    dispatcher.register(3, () => 'three');
    expect(dispatcher.unregister(3)).toBe(true);
    expect(dispatcher.unregister(3)).toBe(false);
    expect(dispatcher.has(3)).toBe(false);
    expect(dispatcher.dispatch(3, 'y')).toBe('default:3:y');
    dispatcher.register(3, () => 'three again');
    expect(dispatcher.dispatch(3, '')).toBe('three again');
  });

  it('setDefaultHandler replaces the fallback', () => {
    const { dispatcher } = make();
    dispatcher.setDefaultHandler((key) => `new default ${key}`);
    expect(dispatcher.dispatch(5, '')).toBe('new default 5');
  });

  it('works with string keys and multiple arguments, void results', () => {
    const calls: string[] = [];
    const dispatcher = new Dispatcher<string, [number, boolean]>((key, n, flag) => {
      calls.push(`default ${key} ${n} ${flag}`);
    });
    dispatcher.register('login', (n, flag) => {
      calls.push(`login ${n} ${flag}`);
    });
    dispatcher.dispatch('login', 1, true);
    dispatcher.dispatch('logout', 2, false);
    expect(calls).toEqual(['login 1 true', 'default logout 2 false']);
  });
});
