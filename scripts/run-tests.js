#!/usr/bin/env node
// Runs every built test file (dist/**/*.test.js, unit tests beside their sources and the
// integration tests of test/) with node's test runner and the TAP reporter, so the
// output ends in node's standard summary lines (`# pass N`, `# fail N`, ...). Exits
// non-zero when any test fails or the run exceeds its bound.
//
//   node scripts/run-tests.js                      all tests (run `npm run build` first)
//   BERTH_TEST_FILTER=sqs-sdk node scripts/...     only files whose path contains it
//   BERTH_TEST_CONCURRENCY=1                       files in parallel (default 2)
//   BERTH_TEST_TIMEOUT_MS=300000                   per-test bound (default 5 minutes)
//   BERTH_SUITE_TIMEOUT_MS=2400000                 whole-run bound (default 40 minutes)
//
// Only compiled files whose TypeScript source still exists are run, so a test deleted
// from the tree but left behind in dist/ does not run.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distRoot = path.join(repoRoot, 'dist');
const startMs = performance.now();

const filter = process.env.BERTH_TEST_FILTER ?? '';
const concurrency = positiveInteger('BERTH_TEST_CONCURRENCY', 2);
const testTimeoutMs = positiveInteger('BERTH_TEST_TIMEOUT_MS', 5 * 60_000);
const suiteTimeoutMs = positiveInteger('BERTH_SUITE_TIMEOUT_MS', 40 * 60_000);

function positiveInteger(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`run-tests: ${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

function findTestFiles(directory) {
  const found = [];
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules') continue;
      found.push(...findTestFiles(full));
    } else if (entry.isFile() && entry.name.endsWith('.test.js')) {
      found.push(full);
    }
  }
  return found;
}

/** dist/test/x.test.js -> test/x.test.ts (also .tsx/.mts/.js sources). */
function hasSource(compiled) {
  const relative = path.relative(distRoot, compiled);
  const stem = relative.slice(0, -'.js'.length);
  return ['.ts', '.tsx', '.mts', '.js'].some((extension) => existsSync(path.join(repoRoot, stem + extension)));
}

if (!existsSync(distRoot)) {
  console.error('run-tests: dist/ is missing. Build first: npm run build (or run bash scripts/test.sh).');
  process.exit(2);
}

const allFiles = findTestFiles(distRoot).filter(hasSource).sort();
const files = allFiles.filter((file) => path.relative(repoRoot, file).includes(filter));
const relativeFiles = files.map((file) => path.relative(repoRoot, file));

console.log(`# run-tests: ${files.length} of ${allFiles.length} test files${filter ? ` (BERTH_TEST_FILTER=${filter})` : ''}, concurrency ${concurrency}, per-test timeout ${testTimeoutMs} ms`);
for (const file of relativeFiles) console.log(`#   ${file}`);
if (files.length === 0) {
  console.error(`run-tests: no test files${filter ? ` match BERTH_TEST_FILTER=${filter}` : ' in dist/'}`);
  process.exit(1);
}

const child = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, `--test-timeout=${testTimeoutMs}`, '--test-reporter=tap', ...relativeFiles],
  { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BERTH_TEST_RUN: '1' } },
);

// node prints its summary (`# tests`, `# pass`, ...) last; hold those lines back so the
// elapsed time and the list of failures print before them and the output still ends in
// the summary.
const summaryLine = /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;
const heldSummary = [];
const failures = [];
let awaitingLocation = false;
const lines = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (summaryLine.test(line)) {
    heldSummary.push(line);
    return;
  }
  // Top-level and first-level failures name the file or the suite/test that failed.
  const failed = /^(?: {4})?not ok \d+ - (.*)$/.exec(line);
  if (failed) {
    failures.push(`${line.startsWith(' ') ? '  ' : ''}${failed[1]}`);
    awaitingLocation = !line.startsWith(' ');
  } else if (awaitingLocation) {
    const location = /^ {2}location: '(.*)'$/.exec(line);
    if (location) {
      failures[failures.length - 1] += ` (${path.relative(repoRoot, location[1] ?? '')})`;
      awaitingLocation = false;
    } else if (/^ {2}\.\.\.$/.test(line)) {
      awaitingLocation = false;
    }
  }
  process.stdout.write(line + '\n');
});

let timedOut = false;
const suiteTimer = setTimeout(() => {
  timedOut = true;
  console.log(`# run-tests: the whole run exceeded ${suiteTimeoutMs} ms; stopping it`);
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
}, suiteTimeoutMs);
suiteTimer.unref();

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    child.kill(signal);
  });
}

const [exitCode, exitSignal] = await new Promise((resolve) => {
  child.on('close', (code, signal) => resolve([code, signal]));
});
clearTimeout(suiteTimer);

const elapsedSeconds = ((performance.now() - startMs) / 1000).toFixed(1);
if (failures.length > 0) {
  console.log('# run-tests: failures:');
  for (const failure of failures) console.log(`#   not ok: ${failure}`);
}
console.log(`# run-tests: elapsed ${elapsedSeconds} s (${files.length} files)${timedOut ? ', TIMED OUT' : ''}`);
for (const line of heldSummary) process.stdout.write(line + '\n');

if (exitSignal) {
  console.error(`run-tests: the test runner was stopped by ${exitSignal}`);
  process.exit(1);
}
process.exit(timedOut ? 1 : (exitCode ?? 1));
