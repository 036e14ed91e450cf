// Assertions stay on in production: a broken invariant is a bug, and serving wrong
// data is worse than stopping loudly.

export class AssertionError extends Error {
  override name = 'AssertionError';
}

/** `message` may be a function: a template string built on every call cost the hot paths real time. */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionError(typeof message === 'string' ? message : message());
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
