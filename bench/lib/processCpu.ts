/**
 * CPU time of the processes a bench started, grouped by role, over a measured window: where the
 * time of each message goes per hop, measured on the processes themselves rather than guessed
 * from latencies (which on a loaded machine mostly measure waiting for a core).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's utime and stime. */
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** Role of a process from its command line, or null to leave it out. */
export type Classify = (argv: readonly string[]) => string | null;

/** Per process: its role and CPU time so far (user + system, ms). */
export type CpuSnapshot = Map<number, { role: string; ms: number }>;

function readStat(pid: number): { ppid: number; ms: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ms: ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS };
  } catch {
    return null; // exited meanwhile
  }
}

function readArgv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return [];
  }
}

/** Every descendant of `root` that `classify` names, with its CPU time so far. */
export function snapshotCpu(root: number, classify: Classify): CpuSnapshot {
  const parent = new Map<number, number>();
  const ms = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat === null) continue;
    parent.set(Number(name), stat.ppid);
    ms.set(Number(name), stat.ms);
  }
  const isDescendant = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === root) return true;
    return false;
  };
  const snapshot: CpuSnapshot = new Map();
  for (const [pid, used] of ms) {
    if (!isDescendant(pid)) continue;
    const role = classify(readArgv(pid));
    if (role !== null) snapshot.set(pid, { role, ms: used });
  }
  return snapshot;
}

/** CPU ms per role between two snapshots (processes present in both). */
export function cpuByRole(before: CpuSnapshot, after: CpuSnapshot): Map<string, number> {
  const total = new Map<string, number>();
  for (const [pid, end] of after) {
    const start = before.get(pid);
    if (start === undefined) continue;
    total.set(end.role, (total.get(end.role) ?? 0) + end.ms - start.ms);
  }
  return total;
}
