#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=64 --initial-old-space-size=256
// The berth command. The TypeScript is compiled by `npm install` (npm's prepare step).
// --max-semi-space-size=64: a young generation of 64 MiB instead of 16 lets the short-lived
// objects of each request die young; the server spent 10-15% less CPU per message with it.
// --initial-old-space-size=256: V8 starts a full (mark-compact) collection whenever the old
// generation's room below its limit is smaller than the young generation, and with a live
// heap of ~20 MB its computed limit left ~21 MB: a cluster primary at 1,000 msg/s ran a
// 3-7 ms mark-compact every ~0.9 s, the slowest 1% of its deliveries. The flag keeps the
// limit at 256 MB or more, so full collections come only from external (Buffer) memory,
// about every 8 s there.
// MALLOC_MMAP_THRESHOLD_=131072: glibc keeps every buffer of 128 KiB or more (log read-ahead,
// group-commit batches) in its own mapping, returned to the system when freed. By default the
// threshold rises to the largest buffer freed, after which those buffers come from the heap
// and fragment it: draining a 1,000,000-message backlog grew RSS by ~100 MiB more that way.
import('../dist/src/cli/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('berth: the build output is missing. Run `npm install` (or `npm run build`) in the project folder first.');
    process.exit(1);
  }
  throw error;
});
