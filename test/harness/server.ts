// Test harness: starts a real `berth serve` process on loopback and stops it again.
//
// A BerthProcess moves through: starting (spawned, polling /health/ready) -> ready
// (startBerth resolved) -> stopping (SIGTERM sent by stop(), SIGKILL after a bound) ->
// exited. kill(signal) jumps straight to the signal; waitForExit() resolves on exit
// whichever way it came. A process that exits while starting makes startBerth reject with
// the server's log in the message.
//
// Logs (stdout and stderr, the server's pino JSON lines) are kept in memory (the tail,
// bounded) and written to test-artifacts/<name>.log when the server fails to start, when
// it exits on its own with a failure, or when the test file's process ends with a failing
// exit code (node's test runner sets process.exitCode before `exit`), so a red CI run
// carries the server's side of the story.
//
// Safety net: every process still running when the test process exits is SIGKILLed, and
// every temp data dir the harness made is removed then (unless kept).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';

const harnessDir = path.dirname(fileURLToPath(import.meta.url));
const twoUp = path.resolve(harnessDir, '..', '..');
/** The repository root, from dist/test/harness/server.js (or test/harness/server.ts). */
export const repoRoot = path.basename(twoUp) === 'dist' ? path.dirname(twoUp) : twoUp;
export const berthBin = path.join(repoRoot, 'bin', 'berth.js');
export const artifactsDir = path.join(repoRoot, 'test-artifacts');

const logBytesMax = 4 * 1024 * 1024;
const readyTimeoutMsDefault = 30_000;
const stopTimeoutMsDefault = 15_000;
const startAttemptsMax = 3;

export interface StartBerthOptions {
  /** Extra arguments after `serve --host 127.0.0.1 --port P --data-dir D`. */
  args?: string[];
  /** Extra environment variables for the server. */
  env?: Record<string, string>;
  /** Use this data dir (the caller owns it: it is never removed by the harness). */
  dataDir?: string;
  /** Name for logs and artifacts; defaults to <test file>-<n>. */
  name?: string;
  /** Keep the temp data dir the harness made (default: removed by stop()/at exit). */
  keepDataDir?: boolean;
  /** Bound on the wait for /health/ready (default 30 s). */
  readyTimeoutMs?: number;
  /** Which health endpoint means "started" (default ready). */
  waitFor?: 'ready' | 'live';
  /** Use this port instead of picking a free one. */
  port?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BerthProcess {
  readonly name: string;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** The native protocol's port (a free one the harness picked), or undefined when the caller set --native-port. */
  readonly nativePort: number | undefined;
  readonly dataDir: string;
  readonly pid: number;
  /** The exit once it happened, else undefined. */
  readonly exitInfo: ExitInfo | undefined;
  /** SIGTERM, wait for exit, SIGKILL after the bound; removes a harness-made data dir unless kept. Idempotent. */
  stop(options?: { timeoutMs?: number; keepDataDir?: boolean }): Promise<ExitInfo>;
  /** Sends the signal now (e.g. SIGKILL for a crash test). Does not wait. */
  kill(signal: NodeJS.Signals): void;
  waitForExit(): Promise<ExitInfo>;
  /** Everything the server printed so far (the tail, bounded). */
  logs(): string;
  /** The log lines that parse as JSON (pino). */
  logRecords(): Array<Record<string, unknown>>;
  /** Writes the logs to test-artifacts/<name>.log now and returns the path. */
  saveLogs(reason?: string): string;
}

interface Tracked {
  child: ChildProcess;
  berth: BerthProcessImpl;
}

const running = new Set<Tracked>();
const harnessTempDirs = new Set<string>();
const allStarted: BerthProcessImpl[] = [];
let nameCounter = 0;

process.on('exit', (code) => {
  if (code !== 0 || (process.exitCode ?? 0) !== 0) {
    for (const berth of allStarted) {
      try {
        berth.saveLogs('test process exited with a failure');
      } catch {
        // best effort while exiting
      }
    }
  }
  for (const tracked of running) {
    try {
      tracked.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const directory of harnessTempDirs) {
    try {
      rmSync(directory, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
});

function testFileStem(): string {
  const main = process.argv[1];
  if (main === undefined) return 'berth';
  return path.basename(main).replace(/\.test\.(js|ts)$/, '').replace(/\.(js|ts)$/, '');
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
}

/** A temp dir under os.tmpdir(); removed at process exit unless removed earlier. */
export function makeTempDir(prefix = 'berth-test-'): { path: string; remove(): void } {
  const directory = mkdtempSync(path.join(os.tmpdir(), prefix));
  harnessTempDirs.add(directory);
  return {
    path: directory,
    remove() {
      rmSync(directory, { recursive: true, force: true });
      harnessTempDirs.delete(directory);
    },
  };
}

/** Asks the kernel for a free loopback port (listen on 0, close). Racy by nature: callers retry on EADDRINUSE. */
import { freePort } from '../../src/io/free-port.js';
export { freePort };

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One plain HTTP request to 127.0.0.1, bounded in time. */
export function httpRequest(
  url: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const target = new URL(options.path ?? '/', url);
  return new Promise((resolve, reject) => {
    const request = http.request(
      target,
      { method: options.method ?? 'GET', headers: options.headers, agent: false, timeout: options.timeoutMs ?? 5_000 },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`HTTP ${options.method ?? 'GET'} ${target.href} timed out`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

class BerthProcessImpl implements BerthProcess {
  readonly url: string;
  exitInfo: ExitInfo | undefined;
  private logText = '';
  private logDropped = 0;
  private readonly exitPromise: Promise<ExitInfo>;
  private stopPromise: Promise<ExitInfo> | undefined;
  private savedLogPath: string | undefined;
  stopping = false;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly nativePort: number | undefined,
    readonly dataDir: string,
    private readonly child: ChildProcess,
    private readonly ownsDataDir: boolean,
    private readonly keepDataDir: boolean,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    const append = (chunk: Buffer) => this.appendLog(chunk.toString('utf8'));
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        const info = { code, signal };
        this.exitInfo = info;
        resolve(info);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  appendLog(text: string): void {
    this.logText += text;
    if (this.logText.length > logBytesMax) {
      const cut = this.logText.length - logBytesMax;
      this.logDropped += cut;
      this.logText = this.logText.slice(cut);
    }
  }

  logs(): string {
    return (this.logDropped > 0 ? `[... ${this.logDropped} earlier characters dropped ...]\n` : '') + this.logText;
  }

  logRecords(): Array<Record<string, unknown>> {
    const records: Array<Record<string, unknown>> = [];
    for (const line of this.logText.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const value: unknown = JSON.parse(line);
        if (value !== null && typeof value === 'object') records.push(value as Record<string, unknown>);
      } catch {
        // a line cut by the tail bound, or not JSON
      }
    }
    return records;
  }

  saveLogs(reason = 'saved by the test'): string {
    mkdirSync(artifactsDir, { recursive: true });
    const file = path.join(artifactsDir, `${safeName(this.name)}.log`);
    const header = `# berth ${this.name} pid ${this.pid} port ${this.port} data ${this.dataDir}\n# ${reason}; exit ${JSON.stringify(this.exitInfo ?? null)}\n`;
    writeFileSync(file, header + this.logs());
    this.savedLogPath = file;
    return file;
  }

  get savedLogs(): string | undefined {
    return this.savedLogPath;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exitInfo !== undefined) return;
    this.child.kill(signal);
  }

  waitForExit(): Promise<ExitInfo> {
    return this.exitPromise;
  }

  stop(options: { timeoutMs?: number; keepDataDir?: boolean } = {}): Promise<ExitInfo> {
    this.stopPromise ??= this.stopOnce(options.timeoutMs ?? stopTimeoutMsDefault, options.keepDataDir ?? this.keepDataDir);
    return this.stopPromise;
  }

  private async stopOnce(timeoutMs: number, keepDataDir: boolean): Promise<ExitInfo> {
    this.stopping = true;
    if (this.exitInfo === undefined) {
      this.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([this.exitPromise, timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        this.appendLog(`\n[harness] no exit ${timeoutMs} ms after SIGTERM: SIGKILL\n`);
        this.saveLogs('did not stop after SIGTERM');
        this.child.kill('SIGKILL');
      }
    }
    const info = await this.exitPromise;
    if (this.ownsDataDir && !keepDataDir) {
      rmSync(this.dataDir, { recursive: true, force: true });
      harnessTempDirs.delete(this.dataDir);
    }
    return info;
  }
}

/**
 * Starts `node bin/berth.js serve --host 127.0.0.1 --port P --data-dir D ...args` and
 * resolves once GET /health/ready (or /health/live) answers 200. Rejects with the
 * server's log when it exits or does not come up within the bound. Retries with another
 * port when the picked one was taken in the meantime.
 */
export async function startBerth(options: StartBerthOptions = {}): Promise<BerthProcess> {
  const distCli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(distCli)) {
    throw new Error(`startBerth: ${path.relative(repoRoot, distCli)} is missing: build first (npm run build, or bash scripts/test.sh)`);
  }
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= startAttemptsMax; attempt += 1) {
    try {
      return await startOnce(options, attempt);
    } catch (error) {
      lastError = error as Error;
      if (!(error instanceof PortTakenError) || options.port !== undefined) throw error;
    }
  }
  throw lastError ?? new Error('startBerth: failed');
}

class PortTakenError extends Error {}

async function startOnce(options: StartBerthOptions, attempt: number): Promise<BerthProcessImpl> {
  nameCounter += 1;
  const name = options.name ?? `${testFileStem()}-${nameCounter}`;
  const port = options.port ?? (await freePort());
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? makeTempDir(`berth-${safeName(name)}-`).path;
  // The native listener has a fixed default port: give each server its own free one so
  // servers of parallel test files do not collide (unless the caller chose one).
  const callerSetNativePort = (options.args ?? []).some((argument) => argument === '--native-port' || argument.startsWith('--native-port='));
  const nativePort = callerSetNativePort ? undefined : await freePort();
  const args = [
    berthBin, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir,
    ...(nativePort === undefined ? [] : ['--native-port', String(nativePort)]),
    ...(options.args ?? []),
  ];
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    // The server must take its settings from the flags above, not from the runner's env.
    if (value !== undefined && !key.startsWith('BERTH_') && !key.startsWith('NODE_TEST')) env[key] = value;
  }
  Object.assign(env, options.env ?? {});
  const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const berth = new BerthProcessImpl(name, port, nativePort, dataDir, child, ownsDataDir, options.keepDataDir ?? false);
  const tracked = { child, berth };
  running.add(tracked);
  allStarted.push(berth);
  child.on('exit', (code, signal) => {
    running.delete(tracked);
    const expected = berth.stopping || signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT';
    if (!expected && code !== 0) {
      try {
        berth.saveLogs(`exited on its own with code ${code} signal ${signal}`);
      } catch {
        // reported by the test through logs()
      }
    }
  });
  let spawnFailure: Error | undefined;
  child.on('error', (error) => {
    spawnFailure = error;
  });

  const healthPath = options.waitFor === 'live' ? '/health/live' : '/health/ready';
  const timeoutMs = options.readyTimeoutMs ?? readyTimeoutMsDefault;
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer yet';
  for (;;) {
    if (berth.exitInfo !== undefined) {
      const logs = berth.logs();
      if (/EADDRINUSE/.test(logs) && attempt < startAttemptsMax) {
        throw new PortTakenError(`port ${port} taken`);
      }
      const file = berth.saveLogs('exited before it was ready');
      throw new Error(
        `startBerth: berth exited before ${healthPath} answered 200 (exit ${JSON.stringify(berth.exitInfo)}); log in ${file}:\n${tail(logs)}`,
      );
    }
    if (spawnFailure !== undefined) throw new Error(`startBerth: spawn failed: ${spawnFailure.message}`);
    if (Date.now() > deadline) {
      const file = berth.saveLogs('did not become ready');
      await berth.stop({ timeoutMs: 5_000 });
      throw new Error(`startBerth: ${healthPath} did not answer 200 within ${timeoutMs} ms (last: ${lastProblem}); log in ${file}:\n${tail(berth.logs())}`);
    }
    try {
      const response = await httpRequest(berth.url, { path: healthPath, timeoutMs: 2_000 });
      if (response.status === 200) return berth;
      lastProblem = `HTTP ${response.status} ${response.body.slice(0, 200)}`;
    } catch (error) {
      lastProblem = (error as Error).message;
    }
    await new Promise<void>((resolve) => {
      // Poll until the process is up or gone: an exit ends the wait sooner.
      const onExit = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        child.off('exit', onExit);
        resolve();
      }, 100);
      child.once('exit', onExit);
    });
  }
}

function tail(text: string, characters = 6_000): string {
  return text.length <= characters ? text : `...${text.slice(-characters)}`;
}

/** An SDK v3 SQS client for the server: dummy credentials, us-east-1, endpoint url. */
export function sqsClient(url: string, config: Partial<SQSClientConfig> = {}): SQSClient {
  return new SQSClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDBERTHTEST', secretAccessKey: 'berth-test-secret' },
    maxAttempts: 1,
    ...config,
  });
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a command (awscli, python3 + boto3, ...) with a bound: SIGKILL when it runs past
 * timeoutMs. Never rejects for a non-zero exit: the caller asserts on the result.
 */
export function runCommand(
  command: string,
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string | undefined>; input?: string; cwd?: string } = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...process.env, ...(options.env ?? {}) })) {
      if (value !== undefined) env[key] = value;
    }
    const child = spawn(command, args, { env, cwd: options.cwd ?? repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`runCommand: cannot run ${command}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => {
      // the command may exit without reading its input
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Throws a clear error when a tool the test needs is not installed (never a silent skip). */
export function requireFile(file: string, what: string): void {
  if (!existsSync(file)) {
    throw new Error(`${what} is missing (${file} not found). Run \`bash scripts/test.sh\` as root: it installs the Debian packages the tests need.`);
  }
}

/** Resolves when predicate() is true, polling every intervalMs; rejects with `what` after timeoutMs. */
export async function waitUntil(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`waitUntil: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
