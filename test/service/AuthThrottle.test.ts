import { describe, expect, test } from 'vitest';
import { AuthThrottle } from '../../src/app/service/AuthThrottle.js';

describe('AuthThrottle', () => {
  test('per (account, address): free failures, then a doubling wait; other addresses unaffected', () => {
    const t = new AuthThrottle({ failuresPerAccount: 3, failuresPerAddress: 100, baseDelayMs: 1000 });
    for (let i = 0; i < 2; i++) t.loginFailed(7, '10.0.0.1', 0);
    expect(t.loginWait(7, '10.0.0.1', 0)).toBe(0);
    t.loginFailed(7, '10.0.0.1', 0); // third: locked 1 s
    expect(t.loginWait(7, '10.0.0.1', 0)).toBe(1000);
    expect(t.loginWait(7, '10.0.0.2', 0)).toBe(0); // the owner elsewhere
    expect(t.loginWait(8, '10.0.0.1', 0)).toBe(0); // another account from the same address
    t.loginFailed(7, '10.0.0.1', 1000); // fourth: 2 s
    expect(t.loginWait(7, '10.0.0.1', 1000)).toBe(2000);
    t.loginFailed(7, '10.0.0.1', 3000); // fifth: 4 s
    expect(t.loginWait(7, '10.0.0.1', 3000)).toBe(4000);
    t.loginSucceeded(7, '10.0.0.1');
    expect(t.loginWait(7, '10.0.0.1', 3000)).toBe(0);
  });

  test('per address across accounts, unless trusted; counters are forgotten after a quiet spell', () => {
    const t = new AuthThrottle({
      failuresPerAccount: 100,
      failuresPerAddress: 3,
      forgetAfterMs: 60_000,
      isTrusted: (a) => a === '127.0.0.1',
    });
    for (let i = 0; i < 3; i++) t.loginFailed(i, '10.0.0.1', 0);
    expect(t.loginWait(99, '10.0.0.1', 0)).toBe(1000);
    for (let i = 0; i < 3; i++) t.loginFailed(i, '127.0.0.1', 0);
    for (let i = 0; i < 200; i++) t.loginFailed(5, '127.0.0.1', 0);
    expect(t.loginWait(99, '127.0.0.1', 0)).toBe(0);
    expect(t.loginWait(5, '127.0.0.1', 0)).toBe(0);
    expect(t.loginWait(99, '10.0.0.1', 61_000)).toBe(0);
  });

  test('registrations: a burst, then the sustained rate, with the wait until the next one', () => {
    const t = new AuthThrottle({ registrationBurst: 2, registrationsPerMinute: 6 });
    expect(t.takeRegistration('10.0.0.1', 0)).toBe(0);
    expect(t.takeRegistration('10.0.0.1', 0)).toBe(0);
    expect(t.takeRegistration('10.0.0.1', 0)).toBe(10_000);
    expect(t.takeRegistration('10.0.0.2', 0)).toBe(0);
    expect(t.takeRegistration('10.0.0.1', 10_000)).toBe(0);
  });

  test('memory is bounded: the least recently touched counters go first', () => {
    const t = new AuthThrottle({ failuresPerAccount: 1, maxEntries: 2 });
    t.loginFailed(1, 'a', 0);
    t.loginFailed(2, 'a', 0);
    t.loginFailed(3, 'a', 0);
    expect(t.loginWait(1, 'a', 0)).toBe(0); // evicted
    expect(t.loginWait(3, 'a', 0)).toBe(1000);
  });
});
