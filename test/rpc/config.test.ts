import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRpcConfig, parseRpcConfig } from '../../src/rpc/config.js';
import { RpcError } from '../../src/rpc/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'mprpc-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function configError(f: () => unknown): RpcError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe('CONFIG_ERROR');
    return error as RpcError;
  }
  throw new Error('expected CONFIG_ERROR');
}

describe('loadRpcConfig', () => {
  it('reads the classic test.conf layout, comments and blank lines included', () => {
    const path = file(
      'test.conf',
      [
        '# rpc节点的ip地址',
        'rpcserverip=127.0.0.1',
        '# rpc节点的端口号',
        'rpcserverport=8000',
        '',
        '   zookeeperip = 127.0.0.1   ',
        'zookeeperport=2181 # trailing comment',
        '\r',
      ].join('\n'),
    );
    expect(loadRpcConfig(path)).toEqual({ host: '127.0.0.1', port: 8000, zookeeper: '127.0.0.1:2181' });
  });

  it('accepts a consumer-only file (just ZooKeeper) and a provider-only file', () => {
    expect(parseRpcConfig('zookeeperip=zk1.local\nzookeeperport=2181\n')).toEqual({
      zookeeper: 'zk1.local:2181',
    });
    expect(parseRpcConfig('rpcserverip=::1\nrpcserverport=0\n')).toEqual({ host: '::1', port: 0 });
  });

  it('names the file and line of each mistake', () => {
    const cases: [string, RegExp][] = [
      ['rpcserverip 127.0.0.1\n', /bad\.conf:1: expected key=value/],
      [
        'rpcserverip=127.0.0.1\nrpcserverport=80000\n',
        /bad\.conf:2: rpcserverport '80000' is not a port number/,
      ],
      ['rpcserverip=127.0.0.1\nrpcserverport=abc\n', /is not a port number/],
      ['rpcserverip=127.0.0.1\nrpcserverport=-1\n', /is not a port number/],
      ['zookeeperip=127.0.0.1\nzookeeperport=0\n', /zookeeperport '0' is not a port number \(1\.\.65535\)/],
      ['rpcserverip=127.0.0.1\nrpcserverpot=8000\n', /bad\.conf:2: unknown key 'rpcserverpot'/],
      ['rpcserverip=\n', /empty value for rpcserverip/],
      ['=8000\n', /missing key/],
      [
        'rpcserverip=1.2.3.4\nrpcserverip=1.2.3.5\n',
        /bad\.conf:2: rpcserverip given twice \(first on line 1\)/,
      ],
      ['rpcserverip=bad host!\nrpcserverport=1\n', /not an IP address or host name/],
      ['rpcserverip=127.0.0.1\n', /rpcserverip and rpcserverport must be given together/],
      ['zookeeperport=2181\n', /zookeeperip and zookeeperport must be given together/],
      ['# nothing but comments\n\n', /no settings/],
    ];
    for (const [text, message] of cases) {
      const path = file('bad.conf', text);
      expect(configError(() => loadRpcConfig(path)).message).toMatch(message);
    }
  });

  it('reports a missing or unreadable file', () => {
    expect(configError(() => loadRpcConfig(join(dir, 'missing.conf'))).message).toMatch(
      /cannot read config file .*missing\.conf: ENOENT/,
    );
    expect(configError(() => loadRpcConfig(dir)).message).toMatch(/cannot read config file .*EISDIR/);
  });
});
