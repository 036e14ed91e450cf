import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from './logger.js';

function collector(): { stream: Writable; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { stream, lines: () => chunks.join('').split('\n').filter((line) => line !== '') };
}

test('JSON lines with level labels, child bindings and redacted secrets', () => {
  const output = collector();
  const logger = createLogger({ level: 'info', pretty: false, destination: output.stream });
  logger.child({ component: 'console' }).info({ secretAccessKey: 'hush', request: { headers: { authorization: 'Basic abc' } } }, 'hello');
  logger.debug('below the level');
  const lines = output.lines();
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.equal(record['level'], 'info');
  assert.equal(record['component'], 'console');
  assert.equal(record['msg'], 'hello');
  assert.equal(typeof record['time'], 'number');
  assert.equal(record['secretAccessKey'], '[redacted]');
  assert.deepEqual(record['request'], { headers: { authorization: '[redacted]' } });
});

test('pretty output is human-readable, not JSON', () => {
  const output = collector();
  createLogger({ pretty: true, destination: output.stream }).warn({ port: 9324 }, 'port in use');
  const text = output.lines().join('\n');
  assert.match(text, /WARN/);
  assert.match(text, /port in use/);
  assert.throws(() => JSON.parse(output.lines()[0] ?? ''));
});

test('an unknown level is refused with its name', () => {
  assert.throws(() => createLogger({ level: 'loud', destination: collector().stream }), /log level "loud"/);
});
