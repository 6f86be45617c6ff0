import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SQLITE_PATH, parseStoreUrl } from '../../src/app/store/openStore.js';

describe('parseStoreUrl', () => {
  it('defaults to ./data/chat.db under the working directory', () => {
    expect(parseStoreUrl(undefined)).toEqual({ kind: 'sqlite', path: resolve(DEFAULT_SQLITE_PATH) });
    expect(parseStoreUrl('')).toEqual({ kind: 'sqlite', path: resolve('data/chat.db') });
  });

  it('reads sqlite: URLs and plain paths', () => {
    expect(parseStoreUrl('sqlite:/var/db/chat.db')).toEqual({ kind: 'sqlite', path: '/var/db/chat.db' });
    expect(parseStoreUrl('sqlite:///var/db/chat.db')).toEqual({ kind: 'sqlite', path: '/var/db/chat.db' });
    expect(parseStoreUrl('sqlite:rel/chat.db')).toEqual({ kind: 'sqlite', path: resolve('rel/chat.db') });
    expect(parseStoreUrl('sqlite::memory:')).toEqual({ kind: 'sqlite', path: ':memory:' });
    expect(parseStoreUrl('/tmp/x.db')).toEqual({ kind: 'sqlite', path: '/tmp/x.db' });
  });

  it('reads mysql:// URLs with encoded credentials and a pool size', () => {
    expect(parseStoreUrl('mysql://chat:p%40ss%3Aw0rd@db.local:3307/chat?connectionLimit=20')).toEqual({
      kind: 'mysql',
      host: 'db.local',
      port: 3307,
      user: 'chat',
      password: 'p@ss:w0rd',
      database: 'chat',
      connectionLimit: 20,
    });
    expect(parseStoreUrl('mariadb://root@127.0.0.1/chat')).toMatchObject({
      port: 3306,
      password: '',
      database: 'chat',
    });
  });

  it('rejects what it cannot open, without echoing secrets', () => {
    expect(() => parseStoreUrl('postgres://u:secret@h/db')).toThrow(/unsupported store URL scheme/);
    expect(() => parseStoreUrl('mysql://u:secret@h:3306/')).toThrow(/without a database name/);
    expect(() => parseStoreUrl('mysql://u:secret@h/db?connectionLimit=lots')).toThrow(/positive integer/);
    expect(() => parseStoreUrl('mysql://u:secret@h:99999999/db')).toThrow(/malformed/);
    expect(() => parseStoreUrl('mysql://u:secret@h:99999999/db')).not.toThrow(/secret/);
  });
});
