// Queue metadata of a single node: which queues exist, their attributes and tags. The
// cluster (a later issue) keeps the same records in etcd behind the same interface.
//
// The single-node store is one JSON file rewritten atomically (write temp, fsync, rename,
// fsync directory) on every change; queue metadata changes are rare next to messages.

import { writeFileDurably, type FileSystem } from '../core/filesystem.js';
import { assert } from '../core/assert.js';

export interface QueueMetadata {
  name: string;
  /** Unique per creation, so a queue deleted and created again never sees the old one's data or receipts. */
  incarnation: string;
  attributes: Record<string, string>;
  tags: Record<string, string>;
  createdTimestampMs: number;
  lastModifiedTimestampMs: number;
  partitionCount: number;
  /** A topic (attribute Berth.Kind=topic): the logical queue id its next subscription gets (ids are never reused). */
  nextLogicalQueueId?: number;
  /**
   * A subscription (attribute Berth.Topic): its topic and its logical queue in the topic's
   * partitions; in a cluster also the topic's incarnation, so a subscription left behind by
   * a deleted topic never attaches to a new topic of the same name.
   */
  subscription?: { topic: string; logicalQueueId: number; topicIncarnation?: string };
}

/** The metadata of a queue created now: a fresh incarnation, copies of its attributes and tags. */
export function newQueueMetadata(name: string, incarnation: string, attributes: Record<string, string>, tags: Record<string, string>, nowMs: number, partitionCount: number): QueueMetadata {
  return { name, incarnation, attributes: { ...attributes }, tags: { ...tags }, createdTimestampMs: nowMs, lastModifiedTimestampMs: nowMs, partitionCount };
}

export interface MetadataSnapshot {
  queues: Record<string, QueueMetadata>;
  /** Name -> delete time, for QueueDeletedRecently (60 s). */
  deletedRecently: Record<string, number>;
  /** Incarnations whose data directories may still need removal. */
  pendingRemoval: string[];
}

export interface MetadataStore {
  load(): Promise<MetadataSnapshot>;
  /** Replaces the stored snapshot durably. Calls are serialised. */
  save(snapshot: MetadataSnapshot): Promise<void>;
}

const fileName = 'metadata.json';
const formatVersion = 1;

export class FileMetadataStore implements MetadataStore {
  private writeChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly fs: FileSystem,
    private readonly directory: string,
  ) {}

  async load(): Promise<MetadataSnapshot> {
    await this.fs.mkdirp(this.directory);
    const path = `${this.directory}/${fileName}`;
    if (!(await this.fs.exists(path))) return { queues: {}, deletedRecently: {}, pendingRemoval: [] };
    const handle = await this.fs.open(path, { create: false });
    try {
      const size = await handle.size();
      const bytes = await handle.read(0, size);
      const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as { version: number } & MetadataSnapshot;
      if (parsed.version !== formatVersion) {
        throw new Error(`${path}: metadata format version ${parsed.version} is not supported by this build (expects ${formatVersion})`);
      }
      return { queues: parsed.queues ?? {}, deletedRecently: parsed.deletedRecently ?? {}, pendingRemoval: parsed.pendingRemoval ?? [] };
    } finally {
      await handle.close();
    }
  }

  save(snapshot: MetadataSnapshot): Promise<void> {
    const bytes = Buffer.from(JSON.stringify({ version: formatVersion, ...snapshot }), 'utf8');
    const write = async (): Promise<void> => {
      const path = `${this.directory}/${fileName}`;
      await writeFileDurably(this.fs, this.directory, `${path}.tmp`, path, bytes);
    };
    const next = this.writeChain.then(write, write);
    this.writeChain = next.catch(() => undefined);
    return next;
  }
}

/** Keeps the whole snapshot in memory (tests, simulator). */
export class MemoryMetadataStore implements MetadataStore {
  private stored: string | undefined;

  async load(): Promise<MetadataSnapshot> {
    if (this.stored === undefined) return { queues: {}, deletedRecently: {}, pendingRemoval: [] };
    return JSON.parse(this.stored) as MetadataSnapshot;
  }

  async save(snapshot: MetadataSnapshot): Promise<void> {
    this.stored = JSON.stringify(snapshot);
    assert(this.stored.length > 0, 'metadata snapshot serialised to nothing');
  }
}
