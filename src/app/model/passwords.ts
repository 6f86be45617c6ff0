import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * scrypt cost. N=2048, r=8, p=1 costs ~4.5 ms and 2 MiB per hash on a 2-core VM (N=16384, node's
 * default, costs ~40 ms): logins and registrations are CPU-bound on hashing, so this keeps one
 * server at several hundred logins/s while still making offline guessing ~2^11 times dearer than
 * a bare hash. Parameters are stored in every hash, so raising them later needs no migration:
 * old hashes keep verifying with the parameters they were made with.
 */
const PARAMS = { N: 2048, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Bounds for parameters read back from storage, so a corrupted row cannot demand gigabytes. */
const MAX_N = 1 << 20;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: 128*N*r plus headroom; node's 32 MiB default rejects N >= 2^15 with r=8.
    scrypt(
      password,
      salt,
      keylen,
      { ...opts, maxmem: 256 * (opts.N ?? 0) * (opts.r ?? 8) + (1 << 20) },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

/** `scrypt$N$r$p$<salt base64>$<hash base64>`: self-describing, so the parameters can change. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(password, salt, KEY_BYTES, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** True when `password` matches `stored`; false for a wrong password or a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const validN = Number.isInteger(N) && N > 1 && N <= MAX_N && (N & (N - 1)) === 0;
  if (!validN || !Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16)
    return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const expected = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length === 0 || expected.length === 0) return false;
  const actual = await scryptAsync(password, salt, expected.length, { N, r, p });
  return timingSafeEqual(actual, expected);
}
