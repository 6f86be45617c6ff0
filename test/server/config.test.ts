import { describe, expect, it } from 'vitest';
import { parseServerArgs, SERVER_HELP } from '../../src/app/server/config.js';

const configOf = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const parsed = parseServerArgs(argv, env);
  if (!('config' in parsed)) throw new Error(`no config: ${JSON.stringify(parsed)}`);
  return parsed.config;
};

describe('classic pacing settings', () => {
  it('default to a 2 ms gap and the classic 1,024-byte recv', () => {
    expect(configOf([])).toMatchObject({ legacyGapMs: 2, legacyWriteBytes: 1024 });
  });

  it('come from the environment, and flags win', () => {
    const env = { CHAT_LEGACY_GAP_MS: '7', CHAT_LEGACY_WRITE_BYTES: '4096' };
    expect(configOf([], env)).toMatchObject({ legacyGapMs: 7, legacyWriteBytes: 4096 });
    expect(configOf(['--legacy-gap-ms', '3', '--legacy-write-bytes=2048'], env)).toMatchObject({
      legacyGapMs: 3,
      legacyWriteBytes: 2048,
    });
  });

  it('refuse values the classic client cannot live with', () => {
    for (const argv of [
      ['--legacy-gap-ms', '0'],
      ['--legacy-gap-ms', '1.5'],
      ['--legacy-write-bytes', '1023'],
      ['--legacy-write-bytes', 'big'],
    ]) {
      expect(parseServerArgs(argv, {})).toHaveProperty('error');
    }
  });

  it('are in --help with their variables and defaults', () => {
    expect(SERVER_HELP).toMatch(/--legacy-gap-ms MS[\s\S]*CHAT_LEGACY_GAP_MS \(2\)/);
    expect(SERVER_HELP).toMatch(/--legacy-write-bytes N[\s\S]*CHAT_LEGACY_WRITE_BYTES \(1024\)/);
  });
});

describe('--server-id', () => {
  it('takes ids the store can record with an epoch (serverId|epoch in 64 characters)', () => {
    const longest = 'g'.repeat(50);
    expect(configOf(['--server-id', longest])).toMatchObject({ serverId: longest });
    expect(configOf([], { CHAT_SERVER_ID: 'gateway-0' })).toMatchObject({ serverId: 'gateway-0' });
  });

  it('refuses an id too long for the store, or holding the epoch separator', () => {
    for (const id of ['g'.repeat(51), 'a|b', '']) {
      expect(parseServerArgs(['--server-id', id], {})).toMatchObject({
        error: expect.stringMatching(/server id|empty/),
      });
    }
  });
});
