/**
 * The bytes of unfinished downloads, kept so that a download resumes (HTTP Range) instead of
 * starting over: after a dropped connection or a stall, after a failed or cancelled Load, and
 * (with OPFS) after the tab was closed. src/weights/download.ts writes them; nothing here is ever
 * used as a model file before download.ts has checked the whole file's sha256.
 *
 * A download is a list of parts (Blobs, appended in order) and one PartialMeta: what the server
 * said about the file (validator, total size) and the running SHA-256 over exactly the stored
 * bytes, so that a resumed download does not hash what it already has again. A part is written
 * before the meta that counts it: parts the meta does not count (a crash between the two) are
 * dropped when the download is opened again.
 *
 * Backends:
 * - OpfsPartStore: the origin private file system (`navigator.storage.getDirectory()`), folder
 *   `solacelive-parts/<key hash>/` with `part-<n>.bin` files and `meta.json`; survives the tab;
 * - IdbPartStore: IndexedDB through idb-keyval (databases `solacelive-parts` for the parts,
 *   `solacelive-parts-meta` for the metas), where OPFS cannot be written; survives the tab;
 * - MemoryPartStore: a Map, for Node, tests and hosts without either (survives within the page
 *   or Worker: a retry or a later Load resumes, a closed tab does not).
 */
import { clear as idbClear, createStore, del as idbDel, delMany as idbDelMany, entries as idbEntries, get as idbGet, keys as idbKeys, set as idbSet, type UseStore } from 'idb-keyval';
import { type Sha256State, sha256Hex } from './sha256.ts';

/** What is stored of one unfinished download. */
export interface PartialMeta {
  /** The file's URL (the cache key). */
  key: string;
  /** The server's strong ETag for the file (sent back as If-Range), or null. */
  etag: string | null;
  /** The sha256 the file must have (the hub's LFS id or the source's), or null when none is known. */
  sha256: string | null;
  /** The whole file's size in bytes. */
  total: number;
  /** Bytes stored (the sum of the parts). */
  bytes: number;
  /** Number of parts. */
  parts: number;
  /** The SHA-256 state after exactly `bytes` bytes, or null when the download is not hashed. */
  hash: Sha256State | null;
  /** When the last part was stored (ms since the epoch). */
  updatedAt: number;
}

export interface PartStore {
  /** Backend name ('opfs', 'memory'). */
  readonly kind: string;
  /**
   * The stored meta and the parts as one Blob (disk-backed for OPFS), or null when nothing is
   * stored. Parts beyond the meta are removed; an entry whose parts do not add up to
   * `meta.bytes` is deleted and null returned.
   */
  open(key: string): Promise<{ meta: PartialMeta; blob: Blob } | null>;
  /**
   * Appends `part` (the bytes following the stored ones), then stores `meta` (which counts it).
   * @returns the part as stored (for OPFS a disk-backed File: the caller can drop its copy).
   * @throws the backend's error (a DOMException QuotaExceededError when the disk is full); the
   *   part is then not counted.
   */
  append(key: string, part: Blob, meta: PartialMeta): Promise<Blob>;
  /** Removes every part and the meta of `key`. @returns true when something was stored. */
  delete(key: string): Promise<boolean>;
  /** The metas of every unfinished download. */
  list(): Promise<PartialMeta[]>;
  /** Removes every unfinished download. */
  clear(): Promise<void>;
}

const checkMeta = (key: string, meta: PartialMeta) => {
  if (meta.key !== key || !Number.isSafeInteger(meta.bytes) || meta.bytes < 0 || !Number.isSafeInteger(meta.parts) || meta.parts < 0) {
    throw new Error(`part store: bad meta for ${key} (key ${meta.key}, ${meta.bytes} bytes in ${meta.parts} parts)`);
  }
};

/** Unfinished downloads in memory (Node, tests, browsers without OPFS). */
export class MemoryPartStore implements PartStore {
  readonly kind = 'memory';
  private readonly map = new Map<string, { meta: PartialMeta; parts: Blob[] }>();
  /** When set, an append that would bring the stored bytes above it throws QuotaExceededError (tests). */
  quotaBytes: number | null = null;

  async open(key: string): Promise<{ meta: PartialMeta; blob: Blob } | null> {
    const e = this.map.get(key);
    if (!e) return null;
    const parts = e.parts.slice(0, e.meta.parts);
    const blob = new Blob(parts);
    if (blob.size !== e.meta.bytes) {
      this.map.delete(key);
      return null;
    }
    e.parts = parts;
    return { meta: structuredClone(e.meta), blob };
  }
  async append(key: string, part: Blob, meta: PartialMeta): Promise<Blob> {
    checkMeta(key, meta);
    if (this.quotaBytes !== null) {
      let used = part.size;
      for (const v of this.map.values()) used += v.meta.bytes;
      if (used > this.quotaBytes) throw new DOMException(`the part store's quota of ${this.quotaBytes} bytes is exceeded`, 'QuotaExceededError');
    }
    const e = this.map.get(key) ?? { meta, parts: [] };
    e.parts.push(part);
    e.meta = structuredClone(meta);
    this.map.set(key, e);
    return part;
  }
  async delete(key: string): Promise<boolean> {
    return this.map.delete(key);
  }
  async list(): Promise<PartialMeta[]> {
    return [...this.map.values()].map((e) => structuredClone(e.meta));
  }
  async clear(): Promise<void> {
    this.map.clear();
  }
}

/** The folder name of one download: a hash of its key (URLs contain '/', '?' and may be long). */
const folderOf = (key: string) => sha256Hex(new TextEncoder().encode(key)).slice(0, 40);
const partName = (n: number) => `part-${String(n).padStart(6, '0')}.bin`;

/** Unfinished downloads in the origin private file system (OPFS): they survive the tab. */
export class OpfsPartStore implements PartStore {
  readonly kind = 'opfs';
  constructor(
    private readonly root: () => Promise<FileSystemDirectoryHandle> = () => navigator.storage.getDirectory(),
    readonly folderName = 'solacelive-parts',
  ) {}

  /** The store's folder; null when it does not exist and `create` is false. */
  private async base(create: boolean): Promise<FileSystemDirectoryHandle | null> {
    try {
      return await (await this.root()).getDirectoryHandle(this.folderName, { create });
    } catch (e) {
      if ((e as Error)?.name === 'NotFoundError') return null;
      throw e;
    }
  }
  private async dir(key: string, create: boolean): Promise<FileSystemDirectoryHandle | null> {
    const base = await this.base(create);
    if (!base) return null;
    try {
      return await base.getDirectoryHandle(folderOf(key), { create });
    } catch (e) {
      if ((e as Error)?.name === 'NotFoundError') return null;
      throw e;
    }
  }
  private static async readMeta(dir: FileSystemDirectoryHandle): Promise<PartialMeta | null> {
    try {
      const f = await (await dir.getFileHandle('meta.json')).getFile();
      return JSON.parse(await f.text()) as PartialMeta;
    } catch {
      return null;
    }
  }
  private static async write(dir: FileSystemDirectoryHandle, name: string, data: Blob | string): Promise<void> {
    const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
    try {
      await w.write(data);
      await w.close(); // the new contents replace the old ones only now (a swap file until then)
    } catch (e) {
      await w.abort().catch(() => undefined);
      throw e;
    }
  }

  async open(key: string): Promise<{ meta: PartialMeta; blob: Blob } | null> {
    const dir = await this.dir(key, false);
    if (!dir) return null;
    const meta = await OpfsPartStore.readMeta(dir);
    if (!meta || meta.key !== key) {
      await this.delete(key);
      return null;
    }
    const files: File[] = [];
    for (let n = 0; n < meta.parts; n++) {
      try {
        files.push(await (await dir.getFileHandle(partName(n))).getFile());
      } catch {
        await this.delete(key);
        return null;
      }
    }
    const blob = new Blob(files);
    if (blob.size !== meta.bytes) {
      await this.delete(key);
      return null;
    }
    // Parts written after the meta was (a crash between the two): not counted, removed.
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) {
      const m = /^part-(\d+)\.bin$/.exec(name);
      if (m && Number(m[1]) >= meta.parts) await dir.removeEntry(name).catch(() => undefined);
    }
    return { meta, blob };
  }
  async append(key: string, part: Blob, meta: PartialMeta): Promise<Blob> {
    checkMeta(key, meta);
    const dir = (await this.dir(key, true))!;
    const handle = await dir.getFileHandle(partName(meta.parts - 1), { create: true });
    await OpfsPartStore.write(dir, partName(meta.parts - 1), part);
    await OpfsPartStore.write(dir, 'meta.json', JSON.stringify(meta));
    return handle.getFile();
  }
  async delete(key: string): Promise<boolean> {
    const base = await this.base(false);
    if (!base) return false;
    try {
      await base.removeEntry(folderOf(key), { recursive: true });
      return true;
    } catch (e) {
      if ((e as Error)?.name === 'NotFoundError') return false;
      throw e;
    }
  }
  async list(): Promise<PartialMeta[]> {
    const out: PartialMeta[] = [];
    const base = await this.base(false);
    if (!base) return out;
    for await (const [, handle] of (base as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
      if (handle.kind !== 'directory') continue;
      const meta = await OpfsPartStore.readMeta(handle as FileSystemDirectoryHandle);
      if (meta) out.push(meta);
    }
    return out;
  }
  async clear(): Promise<void> {
    try {
      await (await this.root()).removeEntry(this.folderName, { recursive: true });
    } catch (e) {
      if ((e as Error)?.name !== 'NotFoundError') throw e;
    }
  }
}

/** Unfinished downloads in IndexedDB (idb-keyval): each part a Blob under `<key>\n<n>`, the metas apart. */
export class IdbPartStore implements PartStore {
  readonly kind = 'indexeddb';
  private readonly parts: UseStore;
  private readonly metas: UseStore;
  constructor(dbName = 'solacelive-parts', storeName = 'parts') {
    this.parts = createStore(dbName, storeName);
    this.metas = createStore(`${dbName}-meta`, storeName);
  }
  private static partKey = (key: string, n: number) => `${key}\n${n}`;
  private async partKeys(key: string): Promise<string[]> {
    return (await idbKeys(this.parts)).map(String).filter((k) => k.startsWith(`${key}\n`));
  }

  async open(key: string): Promise<{ meta: PartialMeta; blob: Blob } | null> {
    const meta = await idbGet<PartialMeta>(key, this.metas);
    if (!meta || meta.key !== key) {
      await this.delete(key);
      return null;
    }
    const blobs: Blob[] = [];
    for (let n = 0; n < meta.parts; n++) {
      const b = await idbGet<Blob>(IdbPartStore.partKey(key, n), this.parts);
      if (!(b instanceof Blob)) {
        await this.delete(key);
        return null;
      }
      blobs.push(b);
    }
    const blob = new Blob(blobs);
    if (blob.size !== meta.bytes) {
      await this.delete(key);
      return null;
    }
    const extra = (await this.partKeys(key)).filter((k) => Number(k.slice(key.length + 1)) >= meta.parts);
    if (extra.length) await idbDelMany(extra, this.parts);
    return { meta, blob };
  }
  async append(key: string, part: Blob, meta: PartialMeta): Promise<Blob> {
    checkMeta(key, meta);
    await idbSet(IdbPartStore.partKey(key, meta.parts - 1), part, this.parts);
    await idbSet(key, meta, this.metas);
    // Read back: the stored Blob is the database's (disk-backed), not the caller's copy.
    return (await idbGet<Blob>(IdbPartStore.partKey(key, meta.parts - 1), this.parts)) ?? part;
  }
  async delete(key: string): Promise<boolean> {
    const had = (await idbGet(key, this.metas)) !== undefined;
    const ks = await this.partKeys(key);
    if (ks.length) await idbDelMany(ks, this.parts);
    await idbDel(key, this.metas);
    return had || ks.length > 0;
  }
  async list(): Promise<PartialMeta[]> {
    return (await idbEntries<string, PartialMeta>(this.metas)).map(([, m]) => m);
  }
  async clear(): Promise<void> {
    await idbClear(this.parts);
    await idbClear(this.metas);
  }
}

let shared: PartStore | null = null;

/**
 * The part store of this page or Worker (one instance, so a later Load finds what an earlier one
 * stored): OPFS where it can be written (`navigator.storage.getDirectory` and
 * `FileSystemFileHandle.createWritable`), else IndexedDB, else memory.
 */
export function defaultPartStore(): PartStore {
  if (!shared) {
    // Writing needs FileSystemFileHandle.createWritable (not in every browser that has OPFS).
    const hasOpfs =
      typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function' &&
      typeof FileSystemFileHandle !== 'undefined' && typeof FileSystemFileHandle.prototype.createWritable === 'function';
    shared = hasOpfs ? new OpfsPartStore() : typeof indexedDB !== 'undefined' ? new IdbPartStore() : new MemoryPartStore();
  }
  return shared;
}
