// The real FileSystem over node:fs/promises. Storage is written against the FileSystem
// interface (src/core/filesystem.ts) so the simulator can swap this for an in-memory disk
// that loses unsynced bytes; this file is the only place storage reaches the real disk.

import { constants, fdatasyncSync, promises as fsp, writeSync } from 'node:fs';
import path from 'node:path';
import type { FileHandle, FileSystem } from '../core/filesystem.js';
import { PendingSyncs } from '../core/pending-syncs.js';
import type { DiskStall } from './disk-stall.js';

/** Writes up to this size are made synchronously (see NodeFileHandle.write). */
const syncWriteBytesMax = 256 * 1024;

/** How a file system's fsyncs run: behind the chaos harness's stall, and watched when asked. */
interface SyncPath {
  /** A thread-pool fsync. */
  run(sync: () => Promise<void>): Promise<void>;
  /** An fsync on the main thread (never watched: it stops the loop, and the lease lapses). */
  runBlocking(sync: () => void): void;
}

class NodeFileHandle implements FileHandle {
  constructor(
    private readonly handle: fsp.FileHandle,
    private readonly syncs: SyncPath,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    // pwrite may write less than asked (rare for regular files, but allowed): loop.
    let written = 0;
    // A small write is a copy into the page cache: done at once, not through the thread
    // pool, whose completion waits for a turn of a busy event loop (a group commit is a
    // write then an fsync, and that wait was half of every commit on a busy cluster primary).
    if (data.byteLength <= syncWriteBytesMax) {
      while (written < data.byteLength) {
        const bytesWritten = writeSync(this.handle.fd, data, written, data.byteLength - written, position + written);
        if (bytesWritten === 0) throw new Error(`write made no progress at position ${position + written}`);
        written += bytesWritten;
      }
      return;
    }
    while (written < data.byteLength) {
      const { bytesWritten } = await this.handle.write(data, written, data.byteLength - written, position + written);
      if (bytesWritten === 0) throw new Error(`write made no progress at position ${position + written}`);
      written += bytesWritten;
    }
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) break; // end of file
      filled += bytesRead;
    }
    return filled === length ? buffer : buffer.subarray(0, filled);
  }

  sync(): Promise<void> {
    return this.syncs.run(() => this.handle.datasync());
  }

  syncBlocking(): void {
    this.syncs.runBlocking(() => fdatasyncSync(this.handle.fd));
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export class NodeFileSystem implements FileSystem {
  /**
   * Thread-pool fsyncs running now, when asked to watch them: a cluster node (see
   * pendingSyncAgeMs). An fsync on the main thread needs no watch: it stops the loop, and
   * the lease lapses. A single node watches nothing, so its fsyncs carry no bookkeeping.
   */
  private readonly pending: PendingSyncs | undefined;
  private readonly syncs: SyncPath;

  /** `stall`: the chaos harness's stalled disk (src/io/disk-stall.ts), never set in production; `watchSyncs`: see pendingSyncAgeMs. */
  constructor(options: { stall?: DiskStall; watchSyncs?: boolean } = {}) {
    const { stall } = options;
    const pending = options.watchSyncs === true ? new PendingSyncs(() => performance.now()) : undefined;
    this.pending = pending;
    this.syncs = {
      run(sync) {
        const running = stall?.active === true ? stall.hold().then(sync) : sync();
        return pending === undefined ? running : pending.track(running);
      },
      runBlocking(sync) {
        if (stall?.active === true) stall.holdBlocking();
        sync();
      },
    };
  }

  /** How long the oldest thread-pool fsync still running has waited, in ms (0: none is running, or syncs are not watched). */
  pendingSyncAgeMs(): number {
    return this.pending?.oldestAgeMs() ?? 0;
  }

  async open(filePath: string, options: { create: boolean }): Promise<FileHandle> {
    // Not O_APPEND: the log writes at explicit positions (pwrite), which O_APPEND ignores on Linux.
    const flags = constants.O_RDWR | (options.create ? constants.O_CREAT : 0);
    return new NodeFileHandle(await fsp.open(filePath, flags, 0o644), this.syncs);
  }

  async list(directory: string): Promise<string[]> {
    try {
      return await fsp.readdir(directory);
    } catch (error) {
      if (isCode(error, 'ENOENT')) return [];
      throw error;
    }
  }

  async mkdirp(directory: string): Promise<void> {
    await fsp.mkdir(directory, { recursive: true });
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  async remove(filePath: string): Promise<void> {
    await fsp.rm(filePath, { force: true });
  }

  async exists(filePath: string): Promise<boolean> {
    try {
      await fsp.access(filePath);
      return true;
    } catch (error) {
      if (isCode(error, 'ENOENT')) return false;
      throw error;
    }
  }

  async syncDirectory(directory: string): Promise<void> {
    const handle = await fsp.open(path.resolve(directory), constants.O_RDONLY);
    try {
      await this.syncs.run(() => handle.sync());
    } finally {
      await handle.close();
    }
  }
}

function isCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
