// One server per data directory: two processes appending to the same logs would corrupt
// them. The lock is a file holding the owner's pid, created exclusively; a lock left by a
// process that no longer runs (kill -9, power loss) is taken over.

import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import path from 'node:path';

export interface DataDirectoryLock {
  release(): void;
}

export function lockDataDirectory(directory: string): DataDirectoryLock {
  mkdirSync(directory, { recursive: true });
  const lockPath = path.join(directory, 'berth.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, `${process.pid}\n`);
      fsyncSync(fd);
      closeSync(fd);
      return {
        release: () => {
          try {
            if (readFileSync(lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(lockPath);
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(lockPath, 'utf8').trim(), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isRunning(owner)) {
        throw new Error(`data directory ${directory} is in use by another Berth process (pid ${owner}); stop it first or use another --data-dir`);
      }
      unlinkSync(lockPath); // stale: its owner is gone
    }
  }
  throw new Error(`could not lock data directory ${directory}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
