// The file interface storage is written against. The real one (src/io/node-filesystem.ts)
// wraps node:fs; the simulator's loses unsynced writes on a crash and tears writes.

export interface FileHandle {
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Reads up to `length` bytes at `position` into a new buffer; shorter at end of file. */
  read(position: number, length: number): Promise<Uint8Array>;
  /** fdatasync: the file's data written so far is durable once this resolves. */
  sync(): Promise<void>;
  /**
   * fdatasync on the calling thread: durable when it returns. Optional (the real file has
   * it; the simulator's does not); a log uses it only when its FlushScheduler allows.
   */
  syncBlocking?(): void;
  size(): Promise<number>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface FileSystem {
  /** Opens for read and write, creating the file if `create` is set. */
  open(path: string, options: { create: boolean }): Promise<FileHandle>;
  /** Names (not paths) of the entries in a directory; [] when it does not exist. */
  list(directory: string): Promise<string[]>;
  mkdirp(directory: string): Promise<void>;
  /** Atomic rename (same directory or file system). */
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** fsync a directory so that creations, renames and removals in it are durable. */
  syncDirectory(directory: string): Promise<void>;
}

/**
 * Writes a whole file crash-safely: the bytes go to `temporaryPath` and are fsynced, then
 * renamed over `finalPath` and the directory fsynced, so a crash leaves the old file or the
 * new one, never a torn mixture.
 */
export async function writeFileDurably(fs: FileSystem, directory: string, temporaryPath: string, finalPath: string, bytes: Uint8Array): Promise<void> {
  await writeAndSync(fs, temporaryPath, bytes);
  await fs.rename(temporaryPath, finalPath);
  await fs.syncDirectory(directory);
}

/** Replaces the file's content with `bytes` and fsyncs it (not yet in any final place). */
export async function writeAndSync(fs: FileSystem, path: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.open(path, { create: true });
  try {
    await handle.truncate(0);
    await handle.write(bytes, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
