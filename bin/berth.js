#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=16 --initial-old-space-size=256
// The berth command. The TypeScript is compiled by `npm install` (npm's prepare step).
// --max-semi-space-size=16: a young generation of 16 MiB (Node 20's default, stated so that
// newer defaults do not change it). A scavenge copies what the young generation still holds
// (recent records in the cache, open receives), so its pause grows with the young
// generation's size: after a busy minute a cluster primary's 64 MiB young generation paused
// it 5-9 ms per scavenge, and 16 MiB 1.4-3.7 ms (W5 p99 7.6/11.0/8.6 against 11.1/10.4/10.0
// ms). The 64 MiB this once had saved 10-15% of CPU per message; in alternating W1 runs it
// no longer showed (server CPU 21-24 us per message either way).
// --initial-old-space-size=256: V8 starts a full (mark-compact) collection whenever the old
// generation's room below its limit is smaller than the young generation. With a live heap
// of ~20 MB its computed limit left ~21 MB, so a cluster primary at 1,000 msg/s ran a 3-7 ms
// mark-compact every ~0.9 s (with the 64 MiB young generation it then had), the slowest 1%
// of its deliveries. The flag keeps the limit at 256 MB or more: full collections then come
// from external (Buffer) memory only, about every 8 s there.
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
