/**
 * Offline cache for downloaded model files, behind one interface with three backends:
 * - CacheApiWeightCache: the browser Cache API (secure contexts; pages and Workers), the default;
 * - IdbWeightCache: IndexedDB through idb-keyval, where the Cache API is missing;
 * - MemoryWeightCache: a Map, for Node, tests and private modes without storage.
 * Keys are the files' full URLs (they include repo and revision). Only complete, verified files
 * are stored (src/weights/sources.ts checks size and format before `put`).
 * Separate from the service worker's app-shell cache (public/sw.js), which never holds weights.
 */
import { clear as idbClear, createStore, del as idbDel, get as idbGet, keys as idbKeys, set as idbSet, type UseStore } from 'idb-keyval';

export interface WeightCache {
  /** Backend name for logs and UI ('cache-api', 'indexeddb', 'memory'). */
  readonly kind: string;
  /** The stored bytes, or null when absent. */
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The stored file as a Blob (disk-backed where the backend allows: weights are never read whole), or null. */
  getBlob(key: string): Promise<Blob | null>;
  putBlob(key: string, blob: Blob): Promise<void>;
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

/** In-memory cache (Node, tests). */
export class MemoryWeightCache implements WeightCache {
  readonly kind = 'memory';
  private readonly map = new Map<string, Uint8Array | Blob>();
  /** Number of get()/getBlob() calls that found the key (for tests and diagnostics). */
  hits = 0;

  async get(key: string): Promise<Uint8Array | null> {
    const v = this.map.get(key);
    if (!v) return null;
    this.hits++;
    return v instanceof Blob ? new Uint8Array(await v.arrayBuffer()) : v.slice();
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.map.set(key, bytes.slice());
  }
  async getBlob(key: string): Promise<Blob | null> {
    const v = this.map.get(key);
    if (!v) return null;
    this.hits++;
    return v instanceof Blob ? v : new Blob([v.slice()]);
  }
  async putBlob(key: string, blob: Blob): Promise<void> {
    this.map.set(key, blob);
  }
  async has(key: string): Promise<boolean> {
    return this.map.has(key);
  }
  async delete(key: string): Promise<boolean> {
    return this.map.delete(key);
  }
  async keys(): Promise<string[]> {
    return [...this.map.keys()];
  }
  async clear(): Promise<void> {
    this.map.clear();
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
  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.putBlob(key, new Blob([new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength)]));
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
  async putBlob(key: string, blob: Blob): Promise<void> {
    try {
      await (await this.open()).put(key, new Response(blob, { headers: { 'content-length': String(blob.size), 'content-type': 'application/octet-stream' } }));
    } catch (e) {
      throw new WeightCacheError(`caching ${key} (${blob.size} bytes) in the Cache API failed: ${(e as Error).message} (storage quota?)`);
    }
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
  constructor(dbName = 'solacelive-weights', storeName = 'files') {
    this.store = createStore(dbName, storeName);
  }
  async get(key: string): Promise<Uint8Array | null> {
    const b = await this.getBlob(key);
    return b ? new Uint8Array(await b.arrayBuffer()) : null;
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.putBlob(key, new Blob([bytes as Uint8Array<ArrayBuffer>]));
  }
  async getBlob(key: string): Promise<Blob | null> {
    const v = await idbGet<Blob | ArrayBuffer>(key, this.store);
    if (!v) return null;
    return v instanceof Blob ? v : new Blob([v]);
  }
  async putBlob(key: string, blob: Blob): Promise<void> {
    try {
      // A Blob lets the browser keep large values on disk instead of in the heap.
      await idbSet(key, blob, this.store);
    } catch (e) {
      throw new WeightCacheError(`caching ${key} (${blob.size} bytes) in IndexedDB failed: ${(e as Error).message} (storage quota?)`);
    }
  }
  async has(key: string): Promise<boolean> {
    return (await idbGet(key, this.store)) !== undefined;
  }
  async delete(key: string): Promise<boolean> {
    const had = await this.has(key);
    await idbDel(key, this.store);
    return had;
  }
  async keys(): Promise<string[]> {
    return (await idbKeys(this.store)).map(String);
  }
  async clear(): Promise<void> {
    await idbClear(this.store);
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
