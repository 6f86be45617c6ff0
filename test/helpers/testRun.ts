/**
 * One id per test run (set by test/globalSetup.ts, inherited by the test processes), carried in
 * the name of every private ZooKeeper's data directory, so that the run's end can find and stop
 * the servers a killed test process left behind, and only this run's.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEST_RUN_ENV = 'MUDUO_TS_TEST_RUN';

/** Prefix of the data directories of this run's ZooKeeper servers. */
export function zooKeeperDirPrefix(): string {
  return `mprpc-zk-${process.env[TEST_RUN_ENV] ?? 'adhoc'}-`;
}

/** SIGKILLs the processes whose command line names a data directory of run `run`; removes the directories. */
export function killRunZooKeepers(run: string | undefined): void {
  if (run === undefined) return;
  const prefix = `mprpc-zk-${run}-`;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (!cmdline.includes(join(tmpdir(), prefix))) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  for (const name of readdirSync(tmpdir())) {
    if (name.startsWith(prefix)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}
