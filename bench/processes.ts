// Process plumbing for the bench: free loopback ports, launching servers with their output
// in a log file, readiness polling, bounded stops, and /proc sampling of RSS and CPU.
//
// Every child launched here is remembered until it exits, and killed when the bench
// process exits for any reason, so an interrupted run leaves no server behind.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { berthNodeFlags, berthProcessEnvironment } from '../src/io/berth-process.js';

const liveChildren = new Set<ChildProcess>();
const directoriesToRemove = new Set<string>();
const pidsToKill = new Set<number>();
let exitHookInstalled = false;

/**
 * Kills a server process that is not our direct child (RabbitMQ's beam runs under a shell
 * script that SIGKILL of the script would orphan) if the bench exits before stopping it.
 */
export function killOnExit(pid: number): void {
  installExitHook();
  pidsToKill.add(pid);
}

export function forgetOnExit(pid: number): void {
  pidsToKill.delete(pid);
}

/** Removes the directory when the bench process exits, however it exits. */
export function removeOnExit(directory: string): void {
  installExitHook();
  directoriesToRemove.add(directory);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const pid of pidsToKill) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const directory of directoriesToRemove) rmSync(directory, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => process.exit(130));
  }
}

export { freePort } from '../src/io/free-port.js';

export interface LaunchOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output goes to <directory>/<name>.log. */
  directory: string;
  name: string;
}

export interface Launched {
  child: ChildProcess;
  logPath: string;
  exited: Promise<number | null>;
}

/**
 * Node flags for a Berth server the bench starts: those bin/berth.js's shebang gives; then
 * BERTH_BENCH_NODE_FLAGS (space-separated, for trying V8 settings under the bench's own
 * load: later flags win, so `--max-semi-space-size=64` overrides the default); and with
 * BERTH_BENCH_CPU_PROFILE_DIR set, a V8 CPU profile written there when the server stops
 * (open it in Chrome DevTools or speedscope), which is how the hot path is profiled.
 */
export function berthNodeArguments(): string[] {
  const directory = process.env['BERTH_BENCH_CPU_PROFILE_DIR'];
  const extra = (process.env['BERTH_BENCH_NODE_FLAGS'] ?? '').split(' ').filter((flag) => flag !== '');
  return [...berthNodeFlags, ...extra, ...(directory === undefined || directory === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${directory}`])];
}

/** Environment of a Berth server the bench starts (what bin/berth.js's shebang sets). */
export function berthEnvironment(): NodeJS.ProcessEnv {
  return berthProcessEnvironment();
}

export function launch(command: string, args: string[], options: LaunchOptions): Launched {
  installExitHook();
  const logPath = join(options.directory, `${options.name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(command, args, {
    cwd: options.cwd ?? options.directory,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  liveChildren.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      liveChildren.delete(child);
      resolve(code);
    });
    child.once('error', () => {
      liveChildren.delete(child);
      resolve(-1);
    });
  });
  return { child, logPath, exited };
}

export function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `check` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function portAccepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

/** Sends `signal`, waits up to `timeoutMs` for exit, then SIGKILLs. */
export async function stopLaunched(launched: Launched, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
  if (launched.child.exitCode !== null || launched.child.signalCode !== null) return;
  launched.child.kill(signal);
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
  if ((await Promise.race([launched.exited, timer])) === 'timeout') {
    launched.child.kill('SIGKILL');
    await launched.exited;
  }
}

export interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a command to completion (bounded), capturing stdout and stderr together. */
export async function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<RunResult> {
  return await new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: -1, output: String(error) });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export async function commandExists(command: string): Promise<boolean> {
  const result = await runCommand('sh', ['-c', `command -v ${command}`]);
  return result.code === 0;
}

/** Resident set size in bytes from /proc/<pid>/status (VmRSS), or undefined if gone. */
export function residentBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

const clockTicksPerSecond = 100; // USER_HZ on Linux; getconf CLK_TCK is 100 on every mainstream kernel

/** CPU time (user + system) consumed by the process so far, in ms, or undefined if gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after the closing parenthesis are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    return ((userTicks + systemTicks) * 1000) / clockTicksPerSecond;
  } catch {
    return undefined;
  }
}
