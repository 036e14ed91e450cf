// Structured logs for the server process. One pino logger per process; parts take a
// child logger (`logger.child({ component: 'storage' })`) so every line names its part.
//
// Output: JSON lines on stdout (one object per line, `time` in epoch milliseconds, `level`
// as a label) for log shippers; when stdout is a terminal, or `pretty` is set, the same
// records are rendered human-readably by pino-pretty instead. pino-pretty runs in the same
// thread (a stream, not a transport worker), so a crash never loses buffered lines.

import { pino, type Logger, type LoggerOptions } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger } from 'pino';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface LoggerSettings {
  /** One of logLevels; default 'info'. */
  level?: string;
  /** Human-readable output; default: whether stdout is a TTY. */
  pretty?: boolean;
  /** Where lines go; default process.stdout. Tests pass a collecting stream. */
  destination?: NodeJS.WritableStream;
}

export function isLogLevel(value: string): value is LogLevel {
  return (logLevels as readonly string[]).includes(value);
}

export function createLogger(options: LoggerSettings = {}): Logger {
  const level = options.level ?? 'info';
  if (!isLogLevel(level)) {
    throw new Error(`log level "${level}" is not one of ${logLevels.join(', ')}`);
  }
  const destination = options.destination ?? process.stdout;
  const pretty = options.pretty ?? (destination === process.stdout && process.stdout.isTTY === true);
  const settings: LoggerOptions = {
    level,
    base: { pid: process.pid },
    formatters: { level: (label) => ({ level: label }) },
    // Secrets never reach a log line, whichever part logs a request or a config.
    redact: {
      paths: ['secretAccessKey', '*.secretAccessKey', 'headers.authorization', '*.headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  };
  if (pretty) {
    const stream = pinoPretty({ colorize: destination === process.stdout && process.stdout.isTTY === true, destination, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
    return pino(settings, stream);
  }
  return pino(settings, destination);
}
