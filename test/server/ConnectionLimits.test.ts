import { describe, expect, test } from 'vitest';
import { AnonymousConnections } from '../../src/app/server/AnonymousConnections.js';
import { ConnectionLimits } from '../../src/app/server/ConnectionLimits.js';
import { parseServerArgs } from '../../src/app/server/config.js';

describe('ConnectionLimits', () => {
  test('total, per address (trusted exempt) and the descriptor budget; leave makes room', () => {
    const limits = new ConnectionLimits({ maxConnections: 5, maxPerAddress: 2, descriptorBudget: 4 });
    expect(limits.admit('10.0.0.1')).toBeNull();
    expect(limits.admit('10.0.0.1')).toBeNull();
    expect(limits.admit('10.0.0.1')).toBe('per-address limit');
    expect(limits.admit('127.0.0.1')).toBeNull();
    expect(limits.admit('127.0.0.1')).toBeNull(); // trusted: no per-address cap
    expect(limits.admit('10.0.0.2')).toBe('descriptor limit');
    limits.leave('10.0.0.1');
    expect(limits.admit('10.0.0.1')).toBeNull();
    expect(limits.count).toBe(4);
    const total = new ConnectionLimits({ maxConnections: 1 });
    expect(total.admit('10.0.0.3')).toBeNull();
    expect(total.admit('10.0.0.4')).toBe('connection limit');
  });
});

describe('AnonymousConnections', () => {
  test('past the cap the oldest is returned; re-adding makes a member the newest', () => {
    const anon = new AnonymousConnections<string>(2);
    expect(anon.add('a')).toBeUndefined();
    expect(anon.add('b')).toBeUndefined();
    expect(anon.add('a')).toBeUndefined(); // logged out again: now the newest
    expect(anon.add('c')).toBe('b');
    anon.remove('a');
    expect(anon.add('d')).toBeUndefined();
    expect(anon.size).toBe(2);
  });
});

describe('hardening flags', () => {
  test('defaults, flags and environment', () => {
    const parsed = parseServerArgs([], {});
    expect(parsed).toMatchObject({
      config: {
        messageTimeoutMs: 5000,
        maxInputBytes: 16 * 1024 * 1024,
        maxLegacyMessageBytes: 65536,
        maxConnections: 100_000,
        maxConnectionsPerIp: 256,
        maxAnonymousConnections: 4096,
        trustedAddresses: ['127.0.0.1', '::1', '::ffff:127.0.0.1'],
      },
    });
    const set = parseServerArgs(
      ['--message-timeout', '2', '--max-connections-per-ip=0', '--trusted-addresses', '10.0.0.1, 10.0.0.2'],
      { CHAT_MAX_ANONYMOUS: '7' },
    );
    expect(set).toMatchObject({
      config: {
        messageTimeoutMs: 2000,
        maxConnectionsPerIp: 0,
        maxAnonymousConnections: 7,
        trustedAddresses: ['10.0.0.1', '10.0.0.2'],
      },
    });
    expect(parseServerArgs(['--trusted-addresses', ''], {})).toMatchObject({
      config: { trustedAddresses: [] },
    });
    expect(parseServerArgs(['--max-connections', '0'], {})).toHaveProperty('error');
  });
});
