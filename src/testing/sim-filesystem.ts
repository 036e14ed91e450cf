// An in-memory FileSystem for deterministic tests and the simulator.
//
// Model. Every file is an inode with two byte arrays: `current` (what reads see) and
// `durable` (what survives a crash). `sync()` copies current to durable. Every directory
// is likewise two name -> inode maps: `entries` (what list/open see) and `durableEntries`
// (the namespace as of the last `syncDirectory`). So a created file, a rename or a
// removal that was not followed by syncDirectory is undone by a crash, as on a real disk
// where the directory was never fsynced.
//
// crash(): every directory goes back to its durable namespace and every file to its
// durable bytes; with `torn`, a file whose unsynced bytes extend its durable bytes keeps a
// random prefix of that extension (a write cut part way, as after a power loss), and
// optionally garbage in place of the last kept bytes. Handles opened before the crash
// are dead: any use throws.
//
// Faults: `injectFault` makes the next matching operations throw an errno-style error
// (ENOSPC on write, EIO on sync, ...); `capacityBytes` makes writes past a total size
// throw ENOSPC. A failed write may leave a prefix of its bytes (like a real short write
// before ENOSPC) when `partialWriteOnFault` is set.

import type { FileHandle, FileSystem } from '../core/filesystem.js';
import type { Random } from '../core/random.js';
import { assert } from '../core/assert.js';

export type SimOperation = 'open' | 'write' | 'read' | 'sync' | 'truncate' | 'rename' | 'remove' | 'syncDirectory';

export interface SimFault {
  operation: SimOperation;
  /** Only paths containing this string match (all paths when absent). */
  pathIncludes?: string;
  /** errno code of the thrown error, e.g. 'ENOSPC', 'EIO'. */
  code: string;
  /** How many matching operations fail before the fault is spent (default 1; Infinity: forever). */
  count?: number;
}

export interface SimCrashOptions {
  /** Keep a random prefix of unsynced appended bytes (needs `random`). */
  torn?: boolean;
  /** With torn: overwrite up to 8 of the last kept bytes with random garbage. */
  garbage?: boolean;
  random?: Random;
}

interface Inode {
  current: Uint8Array;
  currentLength: number;
  /** Bytes [0, durableLength) of the durable image. */
  durableLength: number;
  /**
   * The durable image, copied on the first unsynced change below durableLength; while
   * undefined, the durable image is current[0, durableLength) (the common append-only case,
   * so a sync costs nothing per byte).
   */
  durableSnapshot: Uint8Array | undefined;
}

interface Directory {
  entries: Map<string, Inode>;
  durableEntries: Map<string, Inode>;
}

export class SimError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
  }
}

export class SimFileSystem implements FileSystem {
  private readonly directories = new Map<string, Directory>();
  private readonly faults: (SimFault & { remaining: number })[] = [];
  /** Bumped by crash(): handles from an older generation are dead. */
  private generation = 0;
  /** Total bytes of all current files above which a write fails with ENOSPC. */
  capacityBytes = Infinity;
  /** A write that fails by fault or capacity first writes a prefix of its bytes. */
  partialWriteOnFault = false;
  /**
   * Called at the start of every operation (before it takes effect): tests crash the disk
   * at an exact point with it. If it crashes, the operation throws EBADF.
   */
  onOperation: ((operation: SimOperation, filePath: string) => void) | undefined;
  /** Counters, for tests that assert how many syncs or writes happened. */
  readonly counts: Record<SimOperation, number> = {
    open: 0, write: 0, read: 0, sync: 0, truncate: 0, rename: 0, remove: 0, syncDirectory: 0,
  };

  /** While true, every sync and syncDirectory waits (a stalled device); see stall(). */
  private stalledSyncs: Array<() => void> | undefined;

  injectFault(fault: SimFault): void {
    this.faults.push({ ...fault, remaining: fault.count ?? 1 });
  }

  /** From now on every fsync waits until unstall() (or a crash); writes still reach the page cache. */
  stall(): void {
    this.stalledSyncs ??= [];
  }

  unstall(): void {
    const waiting = this.stalledSyncs;
    this.stalledSyncs = undefined;
    for (const resume of waiting ?? []) resume();
  }

  get stalled(): boolean {
    return this.stalledSyncs !== undefined;
  }

  /** Resolves once the disk is no longer stalled (callers test `stalled` first, so an unstalled disk costs no turn). */
  waitUntilUnstalled(): Promise<void> {
    return new Promise((resolve) => (this.stalledSyncs === undefined ? resolve() : this.stalledSyncs.push(resolve)));
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Loses everything not made durable; see the model at the top. */
  crash(options: SimCrashOptions = {}): void {
    this.generation++;
    // Held fsyncs end with the machine: their handles are of the old generation and throw.
    this.unstall();
    for (const directory of this.directories.values()) {
      directory.entries = new Map(directory.durableEntries);
      for (const inode of directory.entries.values()) this.crashInode(inode, options);
    }
  }

  /** Raw bytes of a file as reads see them (tests corrupt or inspect files with these). */
  fileBytes(filePath: string): Uint8Array {
    const inode = this.lookup(filePath);
    assert(inode !== undefined, () => `no file ${filePath}`);
    return inode.current.slice(0, inode.currentLength);
  }

  /** Replaces a file's bytes, durably (tests use it to plant corruption). */
  setFileBytes(filePath: string, bytes: Uint8Array): void {
    const inode = this.lookup(filePath);
    assert(inode !== undefined, () => `no file ${filePath}`);
    inode.current = bytes.slice();
    inode.currentLength = bytes.length;
    inode.durableLength = bytes.length;
    inode.durableSnapshot = undefined;
  }

  async open(filePath: string, options: { create: boolean }): Promise<FileHandle> {
    this.checkFault('open', filePath);
    const { directory, name } = this.split(filePath);
    let dir = this.directories.get(directory);
    let inode = dir?.entries.get(name);
    if (inode === undefined) {
      if (!options.create) throw new SimError('ENOENT', `open ${filePath}`);
      if (dir === undefined) throw new SimError('ENOENT', `open ${filePath}: no directory ${directory}`);
      inode = { current: new Uint8Array(0), currentLength: 0, durableLength: 0, durableSnapshot: undefined };
      dir.entries.set(name, inode);
    }
    return new SimFileHandle(this, filePath, inode, this.generation);
  }

  async list(directory: string): Promise<string[]> {
    const dir = this.directories.get(normalize(directory));
    return dir === undefined ? [] : [...dir.entries.keys()].sort();
  }

  async mkdirp(directory: string): Promise<void> {
    // Directories themselves are treated as durable at creation: the model is about files.
    const normalized = normalize(directory);
    let current = normalized.startsWith('/') ? '/' : '';
    for (const part of normalized.split('/')) {
      if (part === '') continue;
      current = current === '' || current === '/' ? `${current}${part}` : `${current}/${part}`;
      if (!this.directories.has(current)) this.directories.set(current, { entries: new Map(), durableEntries: new Map() });
    }
  }

  async rename(from: string, to: string): Promise<void> {
    this.checkFault('rename', from);
    const source = this.split(from);
    const target = this.split(to);
    const sourceDir = this.directories.get(source.directory);
    const inode = sourceDir?.entries.get(source.name);
    if (sourceDir === undefined || inode === undefined) throw new SimError('ENOENT', `rename ${from}`);
    const targetDir = this.directories.get(target.directory);
    if (targetDir === undefined) throw new SimError('ENOENT', `rename to ${to}`);
    sourceDir.entries.delete(source.name);
    targetDir.entries.set(target.name, inode);
  }

  async remove(filePath: string): Promise<void> {
    this.checkFault('remove', filePath);
    const { directory, name } = this.split(filePath);
    this.directories.get(directory)?.entries.delete(name);
  }

  async exists(filePath: string): Promise<boolean> {
    const normalized = normalize(filePath);
    return this.lookup(normalized) !== undefined || this.directories.has(normalized);
  }

  async syncDirectory(directory: string): Promise<void> {
    if (this.stalled) {
      const generation = this.generation;
      await this.waitUntilUnstalled();
      if (generation !== this.generation) throw new SimError('EBADF', `syncDirectory ${directory}: the disk crashed`);
    }
    this.checkFault('syncDirectory', directory);
    const dir = this.directories.get(normalize(directory));
    if (dir === undefined) throw new SimError('ENOENT', `syncDirectory ${directory}`);
    dir.durableEntries = new Map(dir.entries);
  }

  totalBytes(): number {
    let total = 0;
    for (const dir of this.directories.values()) for (const inode of dir.entries.values()) total += inode.currentLength;
    return total;
  }

  /** Throws the injected fault for this operation and path, if any is armed. */
  checkFault(operation: SimOperation, filePath: string): void {
    this.counts[operation]++;
    if (this.onOperation !== undefined) {
      const generation = this.generation;
      this.onOperation(operation, filePath);
      if (generation !== this.generation) throw new SimError('EBADF', `${operation} ${filePath}: the disk crashed`);
    }
    const fault = this.faults.find((candidate) => candidate.operation === operation
      && candidate.remaining > 0
      && (candidate.pathIncludes === undefined || filePath.includes(candidate.pathIncludes)));
    if (fault === undefined) return;
    fault.remaining--;
    throw new SimError(fault.code, `injected fault on ${operation} ${filePath}`);
  }

  checkGeneration(generation: number, filePath: string): void {
    if (generation !== this.generation) throw new SimError('EBADF', `handle of ${filePath} died in a crash`);
  }

  private crashInode(inode: Inode, options: SimCrashOptions): void {
    const durable = inode.durableSnapshot ?? inode.current.subarray(0, inode.durableLength);
    let keep = durable.length;
    const extendsDurable = inode.durableSnapshot === undefined && inode.currentLength > durable.length;
    if (options.torn === true && extendsDurable) {
      assert(options.random !== undefined, 'a torn crash needs a Random');
      keep = durable.length + options.random.int(inode.currentLength - durable.length + 1);
    }
    const bytes = new Uint8Array(keep);
    bytes.set(durable);
    if (keep > durable.length) {
      bytes.set(inode.current.subarray(durable.length, keep), durable.length);
      if (options.garbage === true && options.random !== undefined) {
        const garbageBytes = Math.min(keep - durable.length, 1 + options.random.int(8));
        bytes.set(options.random.bytes(garbageBytes), keep - garbageBytes);
      }
    }
    inode.current = bytes;
    inode.currentLength = keep;
    inode.durableLength = keep;
    inode.durableSnapshot = undefined;
  }

  private lookup(filePath: string): Inode | undefined {
    const { directory, name } = this.split(filePath);
    return this.directories.get(directory)?.entries.get(name);
  }

  private split(filePath: string): { directory: string; name: string } {
    const normalized = normalize(filePath);
    const slash = normalized.lastIndexOf('/');
    return slash < 0
      ? { directory: '', name: normalized }
      : { directory: normalized.slice(0, slash), name: normalized.slice(slash + 1) };
  }
}

class SimFileHandle implements FileHandle {
  private closed = false;

  constructor(
    private readonly fs: SimFileSystem,
    private readonly filePath: string,
    private readonly inode: Inode,
    private readonly generation: number,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    this.check();
    try {
      this.fs.checkFault('write', this.filePath);
    } catch (error) {
      if (this.fs.partialWriteOnFault && data.length > 1) this.writeBytes(data.subarray(0, data.length >> 1), position);
      throw error;
    }
    const growth = Math.max(0, position + data.length - this.inode.currentLength);
    if (this.fs.totalBytes() + growth > this.fs.capacityBytes) {
      const room = Math.max(0, this.fs.capacityBytes - this.fs.totalBytes());
      if (this.fs.partialWriteOnFault && room > 0) this.writeBytes(data.subarray(0, Math.min(room, data.length)), position);
      throw new SimError('ENOSPC', `write ${this.filePath}: no space left on device`);
    }
    this.writeBytes(data, position);
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    this.check();
    this.fs.checkFault('read', this.filePath);
    const end = Math.min(this.inode.currentLength, position + length);
    return position >= end ? new Uint8Array(0) : this.inode.current.slice(position, end);
  }

  async sync(): Promise<void> {
    this.check();
    if (this.fs.stalled) {
      await this.fs.waitUntilUnstalled();
      this.check();
    }
    this.fs.checkFault('sync', this.filePath);
    this.inode.durableLength = this.inode.currentLength;
    this.inode.durableSnapshot = undefined;
  }

  async size(): Promise<number> {
    this.check();
    return this.inode.currentLength;
  }

  async truncate(length: number): Promise<void> {
    this.check();
    this.fs.checkFault('truncate', this.filePath);
    if (length < this.inode.durableLength) this.snapshotDurable();
    if (length < this.inode.currentLength) this.inode.current.fill(0, length, this.inode.currentLength);
    else this.ensureCapacity(length);
    this.inode.currentLength = length;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Copy-on-write of the durable image before an unsynced change below durableLength. */
  private snapshotDurable(): void {
    if (this.inode.durableSnapshot === undefined) {
      this.inode.durableSnapshot = this.inode.current.slice(0, this.inode.durableLength);
    }
  }

  private writeBytes(data: Uint8Array, position: number): void {
    if (position < this.inode.durableLength && data.length > 0) this.snapshotDurable();
    const end = position + data.length;
    this.ensureCapacity(end);
    this.inode.current.set(data, position);
    if (end > this.inode.currentLength) this.inode.currentLength = end;
  }

  private ensureCapacity(length: number): void {
    if (length <= this.inode.current.length) return;
    const grown = new Uint8Array(Math.max(length, this.inode.current.length * 2, 4096));
    grown.set(this.inode.current.subarray(0, this.inode.currentLength));
    this.inode.current = grown;
  }

  private check(): void {
    if (this.closed) throw new SimError('EBADF', `${this.filePath} is closed`);
    this.fs.checkGeneration(this.generation, this.filePath);
  }
}

function normalize(filePath: string): string {
  const parts: string[] = [];
  for (const part of filePath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return (filePath.startsWith('/') ? '/' : '') + parts.join('/');
}
