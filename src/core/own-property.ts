// Maps keyed by names users choose (message attribute names, queue attributes, tags) are
// plain objects here. "__proto__" is a valid SQS attribute name, and a plain assignment
// `map["__proto__"] = value` sets the object's prototype instead of adding the entry: the
// attribute vanished (and its MD5 no longer matched what the client computed).

/** Adds `key` as an ordinary own, enumerable entry, whatever the key is. */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
