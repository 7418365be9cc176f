/**
 * Offline cache for downloaded model files, behind one interface with three backends:
 * - CacheApiWeightCache: the browser Cache API (secure contexts; pages and Workers), the default;
 * - IdbWeightCache: IndexedDB through idb-keyval, where the Cache API is missing;
 * - MemoryWeightCache: a Map, for Node, tests and private modes without storage.
 * Keys are the files' full URLs (they include repo and revision). Only complete, verified files
 * are stored (src/weights/download.ts checks size, type, format and sha256 before `put`), each
 * with its CacheEntryMeta (size, sha256) so that a hit can be checked again before use.
 * Separate from the service worker's app-shell cache (workers/sw.ts (the Workbox service worker)), which never holds weights.
 */
import { clear as idbClear, createStore, del as idbDel, get as idbGet, keys as idbKeys, set as idbSet, type UseStore } from 'idb-keyval';

/** What was known of a file when it was cached. */
export interface CacheEntryMeta {
  /** Bytes. */
  size: number;
  /** sha256 of the bytes (64 lowercase hex digits), or null when it was not computed. */
  sha256: string | null;
  /** When the file was cached (ms since the epoch); set by `put` when absent. Absent for entries cached before it was recorded. */
  storedAt?: number;
}

/** Storage this cache draws on, in bytes (navigator.storage.estimate for the browser backends). */
export interface StorageEstimateBytes {
  usage: number;
  quota: number;
}

export interface WeightCache {
  /** Backend name for logs and UI ('cache-api', 'indexeddb', 'memory'). */
  readonly kind: string;
  /** The stored bytes, or null when absent. */
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array, meta?: CacheEntryMeta): Promise<void>;
  /** The stored file as a Blob (disk-backed where the backend allows: weights are never read whole), or null. */
  getBlob(key: string): Promise<Blob | null>;
  putBlob(key: string, blob: Blob, meta?: CacheEntryMeta): Promise<void>;
  /** The meta stored with the file, or null (absent, or stored without meta). */
  getMeta(key: string): Promise<CacheEntryMeta | null>;
  has(key: string): Promise<boolean>;
  /** @returns true when something was deleted. */
  delete(key: string): Promise<boolean>;
  keys(): Promise<string[]>;
  clear(): Promise<void>;
  /** Usage and quota of the storage behind this cache, or null when unknown. */
  estimate(): Promise<StorageEstimateBytes | null>;
}

/** A cache backend failed (quota exceeded, storage disabled). The message names the key; `cause` is the backend's error. */
export class WeightCacheError extends Error {
  override name = 'WeightCacheError';
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
  }
}

/** True when `e` (or its cause) is the storage's QuotaExceededError (Cache API, IndexedDB, OPFS). */
export function isQuotaError(e: unknown): boolean {
  for (let x = e, depth = 0; x && depth < 4; x = (x as { cause?: unknown }).cause, depth++) {
    const name = (x as Error).name;
    if (name === 'QuotaExceededError' || name === 'StorageQuotaError' || (x as DOMException).code === 22) return true;
  }
  return false;
}

/** navigator.storage.estimate() as bytes, or null where the browser has none (Node) or it fails. */
export async function browserStorageEstimate(): Promise<StorageEstimateBytes | null> {
  try {
    if (typeof navigator === 'undefined' || typeof navigator.storage?.estimate !== 'function') return null;
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    return { usage, quota };
  } catch {
    return null;
  }
}

/** One cached file as the cache manager lists it. */
export interface CachedFile extends CacheEntryMeta {
  key: string;
}

/** Every cached file with its meta (size 0 and no sha256 for an entry stored without meta). */
export async function cachedFiles(cache: WeightCache): Promise<CachedFile[]> {
  const out: CachedFile[] = [];
  for (const key of await cache.keys()) {
    const meta = await cache.getMeta(key);
    out.push({ key, size: meta?.size ?? 0, sha256: meta?.sha256 ?? null, ...(meta?.storedAt !== undefined ? { storedAt: meta.storedAt } : {}) });
  }
  return out;
}

export const WEIGHT_CACHE_NAME = 'solacelive-weights-v1';
/** Response header of a Cache API entry holding the file's sha256. */
const SHA_HEADER = 'x-solacelive-sha256';
/** Response header of a Cache API entry holding when it was cached (ms since the epoch). */
const STORED_AT_HEADER = 'x-solacelive-stored-at';

/** In-memory cache (Node, tests). */
export class MemoryWeightCache implements WeightCache {
  readonly kind = 'memory';
  private readonly map = new Map<string, Uint8Array | Blob>();
  private readonly metas = new Map<string, CacheEntryMeta>();
  /** Number of get()/getBlob() calls that found the key (for tests and diagnostics). */
  hits = 0;
  /**
   * @param quotaBytes when given, a put that would bring the stored bytes above it throws a
   *   DOMException QuotaExceededError, as a full browser storage does (tests).
   */
  constructor(readonly quotaBytes: number | null = null) {}

  async get(key: string): Promise<Uint8Array | null> {
    const v = this.map.get(key);
    if (!v) return null;
    this.hits++;
    return v instanceof Blob ? new Uint8Array(await v.arrayBuffer()) : v.slice();
  }
  async put(key: string, bytes: Uint8Array, meta?: CacheEntryMeta): Promise<void> {
    this.checkQuota(key, bytes.byteLength);
    this.map.set(key, bytes.slice());
    this.setMeta(key, meta);
  }
  async getBlob(key: string): Promise<Blob | null> {
    const v = this.map.get(key);
    if (!v) return null;
    this.hits++;
    return v instanceof Blob ? v : new Blob([v.slice()]);
  }
  async putBlob(key: string, blob: Blob, meta?: CacheEntryMeta): Promise<void> {
    this.checkQuota(key, blob.size);
    this.map.set(key, blob);
    this.setMeta(key, meta);
  }
  async getMeta(key: string): Promise<CacheEntryMeta | null> {
    const m = this.metas.get(key);
    return m ? { ...m } : null;
  }
  async has(key: string): Promise<boolean> {
    return this.map.has(key);
  }
  async delete(key: string): Promise<boolean> {
    this.metas.delete(key);
    return this.map.delete(key);
  }
  async keys(): Promise<string[]> {
    return [...this.map.keys()];
  }
  async clear(): Promise<void> {
    this.map.clear();
    this.metas.clear();
  }
  async estimate(): Promise<StorageEstimateBytes | null> {
    if (this.quotaBytes === null) return null;
    return { usage: this.usedBytes(), quota: this.quotaBytes };
  }
  private usedBytes(except?: string): number {
    let n = 0;
    for (const [k, v] of this.map) if (k !== except) n += v instanceof Blob ? v.size : v.byteLength;
    return n;
  }
  private checkQuota(key: string, size: number): void {
    if (this.quotaBytes !== null && this.usedBytes(key) + size > this.quotaBytes) {
      throw new DOMException(`caching ${key} (${size} bytes) exceeds the quota of ${this.quotaBytes} bytes`, 'QuotaExceededError');
    }
  }
  private setMeta(key: string, meta?: CacheEntryMeta): void {
    if (meta) this.metas.set(key, { ...meta, storedAt: meta.storedAt ?? Date.now() });
    else this.metas.delete(key);
  }
}

/** The Cache API (`caches`), one named cache; each file is a Response with its Content-Length. */
export class CacheApiWeightCache implements WeightCache {
  readonly kind = 'cache-api';
  constructor(readonly cacheName = WEIGHT_CACHE_NAME) {}

  private open(): Promise<Cache> {
    return caches.open(this.cacheName);
  }
  async get(key: string): Promise<Uint8Array | null> {
    const b = await this.getBlob(key);
    return b ? new Uint8Array(await b.arrayBuffer()) : null;
  }
  async put(key: string, bytes: Uint8Array, meta?: CacheEntryMeta): Promise<void> {
    await this.putBlob(key, new Blob([new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength)]), meta);
  }
  async getBlob(key: string): Promise<Blob | null> {
    const r = await (await this.open()).match(key);
    if (!r) return null;
    const blob = await r.blob();
    const len = Number(r.headers.get('content-length') ?? NaN);
    if (Number.isFinite(len) && len !== blob.size) {
      await this.delete(key);
      return null;
    }
    return blob;
  }
  async putBlob(key: string, blob: Blob, meta?: CacheEntryMeta): Promise<void> {
    const headers: Record<string, string> = { 'content-length': String(blob.size), 'content-type': 'application/octet-stream' };
    if (meta?.sha256) headers[SHA_HEADER] = meta.sha256;
    headers[STORED_AT_HEADER] = String(meta?.storedAt ?? Date.now());
    try {
      await (await this.open()).put(key, new Response(blob, { headers }));
    } catch (e) {
      await this.delete(key).catch(() => false); // nothing half-cached
      throw new WeightCacheError(`caching ${key} (${blob.size} bytes) in the Cache API failed: ${(e as Error).message} (storage quota?)`, e);
    }
  }
  async getMeta(key: string): Promise<CacheEntryMeta | null> {
    const r = await (await this.open()).match(key);
    if (!r) return null;
    const size = Number(r.headers.get('content-length') ?? NaN);
    if (!Number.isSafeInteger(size)) return null;
    const at = Number(r.headers.get(STORED_AT_HEADER) ?? NaN);
    return { size, sha256: r.headers.get(SHA_HEADER), ...(Number.isFinite(at) ? { storedAt: at } : {}) };
  }
  async has(key: string): Promise<boolean> {
    return !!(await (await this.open()).match(key));
  }
  async delete(key: string): Promise<boolean> {
    return (await this.open()).delete(key);
  }
  async keys(): Promise<string[]> {
    return (await (await this.open()).keys()).map((r) => r.url);
  }
  async clear(): Promise<void> {
    await caches.delete(this.cacheName);
  }
  estimate(): Promise<StorageEstimateBytes | null> {
    return browserStorageEstimate();
  }
}

/** IndexedDB through idb-keyval (database `solacelive-weights`, store `files`), values as Blobs. */
export class IdbWeightCache implements WeightCache {
  readonly kind = 'indexeddb';
  private readonly store: UseStore;
  /** Metas in a database of their own (idb-keyval keeps one store per database). */
  private readonly metaStore: UseStore;
  constructor(dbName = 'solacelive-weights', storeName = 'files') {
    this.store = createStore(dbName, storeName);
    this.metaStore = createStore(`${dbName}-meta`, storeName);
  }
  async get(key: string): Promise<Uint8Array | null> {
    const b = await this.getBlob(key);
    return b ? new Uint8Array(await b.arrayBuffer()) : null;
  }
  async put(key: string, bytes: Uint8Array, meta?: CacheEntryMeta): Promise<void> {
    await this.putBlob(key, new Blob([bytes as Uint8Array<ArrayBuffer>]), meta);
  }
  async getBlob(key: string): Promise<Blob | null> {
    const v = await idbGet<Blob | ArrayBuffer>(key, this.store);
    if (!v) return null;
    return v instanceof Blob ? v : new Blob([v]);
  }
  async putBlob(key: string, blob: Blob, meta?: CacheEntryMeta): Promise<void> {
    try {
      // A Blob lets the browser keep large values on disk instead of in the heap.
      await idbDel(key, this.metaStore);
      await idbSet(key, blob, this.store);
      if (meta) await idbSet(key, { size: meta.size, sha256: meta.sha256, storedAt: meta.storedAt ?? Date.now() }, this.metaStore);
    } catch (e) {
      // Nothing half-cached: the file without its meta (or a partial write) goes too.
      await idbDel(key, this.store).catch(() => undefined);
      await idbDel(key, this.metaStore).catch(() => undefined);
      throw new WeightCacheError(`caching ${key} (${blob.size} bytes) in IndexedDB failed: ${(e as Error).message} (storage quota?)`, e);
    }
  }
  async getMeta(key: string): Promise<CacheEntryMeta | null> {
    const m = await idbGet<CacheEntryMeta>(key, this.metaStore);
    if (!m || !Number.isSafeInteger(m.size)) return null;
    return { size: m.size, sha256: typeof m.sha256 === 'string' ? m.sha256 : null, ...(typeof m.storedAt === 'number' ? { storedAt: m.storedAt } : {}) };
  }
  async has(key: string): Promise<boolean> {
    return (await idbGet(key, this.store)) !== undefined;
  }
  async delete(key: string): Promise<boolean> {
    const had = await this.has(key);
    await idbDel(key, this.store);
    await idbDel(key, this.metaStore);
    return had;
  }
  async keys(): Promise<string[]> {
    return (await idbKeys(this.store)).map(String);
  }
  async clear(): Promise<void> {
    await idbClear(this.store);
    await idbClear(this.metaStore);
  }
  estimate(): Promise<StorageEstimateBytes | null> {
    return browserStorageEstimate();
  }
}

/**
 * The best backend this host offers: Cache API, else IndexedDB, else memory (nothing persists:
 * the app should say so).
 */
export function defaultWeightCache(): WeightCache {
  if (typeof caches !== 'undefined' && typeof caches.open === 'function') return new CacheApiWeightCache();
  if (typeof indexedDB !== 'undefined') return new IdbWeightCache();
  return new MemoryWeightCache();
}
