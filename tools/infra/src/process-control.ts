// Detached server processes: spawn, identify (pid file + /proc cmdline, so a reused pid is not mistaken
// for our server), stop (SIGTERM, then SIGKILL after a grace period), and TCP port probes.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** True if a process with this pid exists (and is not a zombie, where /proc says so). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc (not Linux): trust kill(0)
  }
}

/** The command line of a live process, or undefined (not Linux, or gone). */
export function commandLineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** Reads a pid file; undefined when absent or unreadable. */
export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pid in `pidFile` if that process is alive and its command line contains `signature` (a path
 * only our server's command line holds). Where /proc is missing the signature is not checked.
 */
export function runningPid(pidFile: string, signature: string): number | undefined {
  const pid = readPidFile(pidFile);
  if (pid === undefined || !isPidAlive(pid)) return undefined;
  const cmdline = commandLineOf(pid);
  if (cmdline !== undefined && !cmdline.includes(signature)) return undefined;
  return pid;
}

export interface DetachedCommand {
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  pidFile: string;
  /** Truncate the log first (a fresh start) instead of appending (a restart). */
  truncateLog: boolean;
}

/** Starts a process in its own session that outlives this one; stdout and stderr go to logFile. */
export function spawnDetached(cmd: DetachedCommand): number {
  mkdirSync(dirname(cmd.logFile), { recursive: true });
  mkdirSync(dirname(cmd.pidFile), { recursive: true });
  const fd = openSync(cmd.logFile, cmd.truncateLog ? 'w' : 'a');
  try {
    writeFileSync(fd, `=== ${new Date().toISOString()} ${cmd.command} ${cmd.args.join(' ')}\n`);
    const child = spawn(cmd.command, cmd.args, {
      cwd: cmd.cwd,
      env: cmd.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${cmd.command}`);
    child.on('error', () => undefined);
    child.unref();
    writeFileSync(cmd.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL; resolves once the process is gone. Removes pidFile. */
export async function stopPid(
  pid: number,
  graceMs: number,
  pidFile?: string,
): Promise<'stopped' | 'killed' | 'absent'> {
  let outcome: 'stopped' | 'killed' | 'absent' = 'absent';
  if (isPidAlive(pid)) {
    signal(pid, 'SIGTERM');
    outcome = (await waitUntil(() => !isPidAlive(pid), graceMs)) ? 'stopped' : 'killed';
    if (outcome === 'killed') {
      signal(pid, 'SIGKILL');
      await waitUntil(() => !isPidAlive(pid), 10_000);
    }
  }
  if (pidFile !== undefined) rmSync(pidFile, { force: true });
  return outcome;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Polls `check` every `intervalMs` until it is true (-> true) or `timeoutMs` passes (-> false). */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (open: boolean) => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The last `lines` lines of a log file ("" when there is none), for error messages and CI. */
export async function logTail(file: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '';
  }
}
