import { describe, expect, test } from 'vitest';
import { parseServiceArgs, SERVICE_HELP } from '../../src/app/distributed/serviceConfig.js';

const base = ['--services', 'message', '--zookeeper', '127.0.0.1:2181', '--redis', 'redis://127.0.0.1:6379'];

describe('chat-service options', () => {
  test('--stats-interval: seconds, 0 (off) by default, documented in --help', () => {
    expect(parseServiceArgs(base)).toMatchObject({ help: false, config: { statsIntervalSec: 0 } });
    expect(parseServiceArgs([...base, '--stats-interval', '5'])).toMatchObject({
      config: { statsIntervalSec: 5 },
    });
    expect(parseServiceArgs([...base, '--stats-interval=0'])).toMatchObject({
      config: { statsIntervalSec: 0 },
    });
    expect(SERVICE_HELP).toMatch(/--stats-interval SEC[\s\S]*\(0\)/);
  });

  test.each(['x', '-1', '1.5', '86401'])('--stats-interval %s is refused with a clear error', (value) => {
    expect(parseServiceArgs([...base, '--stats-interval', value])).toEqual({
      error: '--stats-interval must be a whole number of seconds (0 = off)',
    });
  });
});
