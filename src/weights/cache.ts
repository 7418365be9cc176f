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
}

/** A cache backend failed (quota exceeded, storage disabled). The message names the key. */
export class WeightCacheError extends Error {
  override name = 'WeightCacheError';
}

export const WEIGHT_CACHE_NAME = 'solacelive-weights-v1';
/** Response header of a Cache API entry holding the file's sha256. */
const SHA_HEADER = 'x-solacelive-sha256';

/** In-memory cache (Node, tests). */
export class MemoryWeightCache implements WeightCache {
  readonly kind = 'memory';
  private readonly map = new Map<string, Uint8Array | Blob>();
  private readonly metas = new Map<string, CacheEntryMeta>();
  /** Number of get()/getBlob() calls that found the key (for tests and diagnostics). */
  hits = 0;

  async get(key: string): Promise<Uint8Array | null> {
    const v = this.map.get(key);
    if (!v) return null;
    this.hits++;
    return v instanceof Blob ? new Uint8Array(await v.arrayBuffer()) : v.slice();
  }
  async put(key: string, bytes: Uint8Array, meta?: CacheEntryMeta): Promise<void> {
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
  private setMeta(key: string, meta?: CacheEntryMeta): void {
    if (meta) this.metas.set(key, { ...meta });
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
    try {
      await (await this.open()).put(key, new Response(blob, { headers }));
    } catch (e) {
      throw new WeightCacheError(`caching ${key} (${blob.size} bytes) in the Cache API failed: ${(e as Error).message} (storage quota?)`);
    }
  }
  async getMeta(key: string): Promise<CacheEntryMeta | null> {
    const r = await (await this.open()).match(key);
    if (!r) return null;
    const size = Number(r.headers.get('content-length') ?? NaN);
    if (!Number.isSafeInteger(size)) return null;
    return { size, sha256: r.headers.get(SHA_HEADER) };
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
      if (meta) await idbSet(key, { size: meta.size, sha256: meta.sha256 }, this.metaStore);
    } catch (e) {
      throw new WeightCacheError(`caching ${key} (${blob.size} bytes) in IndexedDB failed: ${(e as Error).message} (storage quota?)`);
    }
  }
  async getMeta(key: string): Promise<CacheEntryMeta | null> {
    const m = await idbGet<CacheEntryMeta>(key, this.metaStore);
    return m && Number.isSafeInteger(m.size) ? { size: m.size, sha256: typeof m.sha256 === 'string' ? m.sha256 : null } : null;
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
