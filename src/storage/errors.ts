// Corruption found on disk: a record or file whose checksum or structure is wrong where
// it cannot be a torn tail. Never skipped: the partition stops with this error, which
// names the file and byte position so an operator can inspect it, restore the replica
// from a backup, or (knowingly) cut the file there.

export class StorageCorruptionError extends Error {
  override name = 'StorageCorruptionError';
  constructor(
    /** Path of the damaged file. */
    readonly file: string,
    /** Byte position in the file where the damage starts. */
    readonly position: number,
    /** What is wrong, e.g. "record checksum mismatch". */
    readonly reason: string,
  ) {
    super(
      `storage corruption in ${file} at byte ${position}: ${reason}. `
        + 'The partition is stopped and no data was skipped. Restore this replica from another replica or a backup; '
        + `if you accept losing every record from this point on, truncate ${file} to ${position} bytes and delete any later segment files.`,
    );
  }
}
