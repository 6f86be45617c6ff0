/** The discovery address of ReconnectingChatClient and chat-client --discover. */
import { describe, expect, test } from 'vitest';
import { parseDiscoverUrl } from '../../src/app/client/GatewayLocator.js';

describe('parseDiscoverUrl', () => {
  test('one host or an ensemble, the registry root defaulting to /mprpc', () => {
    expect(parseDiscoverUrl('zk://127.0.0.1:2181')).toEqual({ connect: '127.0.0.1:2181', root: '/mprpc' });
    expect(parseDiscoverUrl('zk://a:1,b:2,c:3/')).toEqual({ connect: 'a:1,b:2,c:3', root: '/mprpc' });
    expect(parseDiscoverUrl('zk://a:1,b:2/chat/unit-1/')).toEqual({
      connect: 'a:1,b:2',
      root: '/chat/unit-1',
    });
  });

  test('malformed addresses are refused in words', () => {
    expect(() => parseDiscoverUrl('127.0.0.1:2181')).toThrow(/want zk:\/\/HOST:PORT/);
    expect(() => parseDiscoverUrl('zk://a:1,b')).toThrow(/bad ZooKeeper address 'a:1,b'/);
    expect(() => parseDiscoverUrl('zk://a:99999')).toThrow(/bad ZooKeeper address/);
    expect(() => parseDiscoverUrl('zk://a:1//x')).toThrow(/bad registry root/);
  });
});
