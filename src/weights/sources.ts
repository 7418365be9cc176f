/**
 * Where model files come from, with streamed progress and an offline cache.
 *
 * Sources:
 * - `hub`: the released Mimi + Moshi on the Hugging Face hub or a mirror, URL
 *   `${baseUrl}/${repo}/resolve/${revision}/${file}` (default https://huggingface.co,
 *   kyutai/moshiko-pytorch-bf16, main). File names as in moshi/models/loaders.py (MIMI_NAME,
 *   MOSHI_NAME, TEXT_TOKENIZER_NAME); the released configs are built in (no config files).
 * - `urls`: any URLs to a config + safetensors pair per model (configs optional) and a tokenizer.
 * - `files`: a local folder or files picked by the user (File objects), classified by name.
 *
 * Progress events follow transformers.js: per file `initiate` → `download` (headers in, total
 * known) → `progress`* → `done` (or `initiate` → `done` with `cached: true` from the cache), then
 * one `ready` for the whole set; `error` before a failure is thrown. `loaded`/`total` are bytes.
 *
 * Every downloaded file is verified before it is cached or returned: byte count against
 * Content-Length (a truncated download is an error naming the file), safetensors headers parsed
 * (SafetensorsFile.parse), JSON configs parsed. Errors are ModelSourceError naming the file.
 */
import { MemoryWeightCache, type WeightCache, defaultWeightCache } from './cache.ts';
import { SafetensorsError, SafetensorsFile } from './safetensors.ts';

export const DEFAULT_HUB_BASE = 'https://huggingface.co';
export const DEFAULT_REPO = 'kyutai/moshiko-pytorch-bf16';
export const DEFAULT_REVISION = 'main';
/** File names of the release (moshi/models/loaders.py: MIMI_NAME, MOSHI_NAME, TEXT_TOKENIZER_NAME). */
export const RELEASE_FILES = {
  mimiWeights: 'tokenizer-e351c8d8-checkpoint125.safetensors',
  lmWeights: 'model.safetensors',
  tokenizer: 'tokenizer_spm_32k_3.model',
} as const;

export type ProgressStatus = 'initiate' | 'download' | 'progress' | 'done' | 'ready' | 'error';

export interface ProgressInfo {
  status: ProgressStatus;
  /** File name (last URL segment or File.name); for 'ready', a summary of the set. */
  file: string;
  /** Which model input this file is. Absent for 'ready'. */
  role?: FileRole;
  /** Bytes so far (for 'ready': all files). */
  loaded: number;
  /** Bytes expected (0 when unknown, e.g. no Content-Length yet). */
  total: number;
  /** 'done' served from the offline cache, or read from a local file (no network). */
  cached?: boolean;
  /** 'error': the message. */
  error?: string;
}
export type ProgressCallback = (e: ProgressInfo) => void;

export type FileRole = 'mimiWeights' | 'lmWeights' | 'mimiConfig' | 'lmConfig' | 'tokenizer';

export interface HubSource {
  kind: 'hub';
  /** Hub or mirror base URL (default https://huggingface.co). */
  baseUrl?: string;
  repo?: string;
  revision?: string;
  /** Override file names (e.g. a quantised LM file); defaults are RELEASE_FILES. */
  files?: Partial<Record<'mimiWeights' | 'lmWeights' | 'tokenizer', string>>;
  /** Skip the tokenizer download (text not needed). */
  skipTokenizer?: boolean;
}

export interface UrlSource {
  kind: 'urls';
  mimiWeights: string;
  lmWeights: string;
  mimiConfig?: string | null;
  lmConfig?: string | null;
  tokenizer?: string | null;
}

export interface FilesSource {
  kind: 'files';
  /** Picked files or a folder's contents (e.g. from <input webkitdirectory>). */
  files: readonly File[];
}

export type ModelSource = HubSource | UrlSource | FilesSource;

/** Everything the loaders need; configs null = the released preset. */
export interface ModelFiles {
  /** In memory, or a Blob (a picked File: read when the model is loaded). */
  mimiWeights: Uint8Array | Blob;
  /** In memory, or a Blob (a picked File: streamed to the GPU tensor by tensor, never read whole). */
  lmWeights: Uint8Array | Blob;
  mimiConfig: unknown | null;
  lmConfig: unknown | null;
  tokenizer: Uint8Array | null;
  /** Display names (file names) per role. */
  names: Partial<Record<FileRole, string>>;
  /** Where each file came from: 'network', 'cache' or 'local'. */
  origins: Partial<Record<FileRole, 'network' | 'cache' | 'local'>>;
}

/** A model file could not be found, fetched, read or verified. `file` names it. */
export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
  constructor(readonly file: string, message: string, readonly status?: number) {
    super(`${file}: ${message}`);
  }
}

export interface LoadOptions {
  /** Offline cache (default: defaultWeightCache()); null disables caching. */
  cache?: WeightCache | null;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** fetch implementation (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Minimum ms between 'progress' events per file (default 100; 0 = every chunk). */
  progressIntervalMs?: number;
  /** Weights downloads: bytes kept in JS chunks before they are folded into the file's Blob (default 64 MiB). */
  blobFoldBytes?: number;
}

/** `${base}/${repo}/resolve/${revision}/${file}` with the base's trailing slashes trimmed. */
export function hubUrl(file: string, base = DEFAULT_HUB_BASE, repo = DEFAULT_REPO, revision = DEFAULT_REVISION): string {
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `${base.replace(/\/+$/, '')}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
}

/** Last path segment of a URL, without query. */
export function fileNameOf(url: string): string {
  const path = url.split(/[?#]/)[0];
  return decodeURIComponent(path.split('/').filter(Boolean).pop() ?? url);
}

/**
 * Checks a file's bytes by role: safetensors headers parse, JSON parses, tokenizer non-empty.
 * @returns the parsed JSON for config roles, else null. @throws ModelSourceError naming the file.
 */
export function verifyFile(role: FileRole, name: string, bytes: Uint8Array): unknown | null {
  if (role === 'mimiWeights' || role === 'lmWeights') {
    try {
      SafetensorsFile.parse(bytes, name);
    } catch (e) {
      const msg = e instanceof SafetensorsError ? e.message.replace(`${name}: `, '') : (e as Error).message;
      throw new ModelSourceError(name, `not a valid safetensors file (${msg})`);
    }
    return null;
  }
  if (role === 'mimiConfig' || role === 'lmConfig') {
    try {
      const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      return v;
    } catch (e) {
      throw new ModelSourceError(name, `config is not valid JSON (${(e as Error).message})`);
    }
  }
  if (bytes.byteLength === 0) throw new ModelSourceError(name, 'tokenizer file is empty');
  return null;
}

/**
 * Downloads one file with streamed progress, verifying its size against Content-Length, and
 * serves/stores it through `cache` (key = URL). Redirects are followed.
 * @throws ModelSourceError naming the file: HTTP error (404 = missing), network error, truncated
 *   download, failed verification. AbortError passes through when `signal` aborts.
 */
export async function fetchFile(url: string, role: FileRole, opts: LoadOptions = {}): Promise<{ bytes: Uint8Array; origin: 'network' | 'cache'; name: string }> {
  const r = await download(url, role, opts, false);
  return { bytes: r.data as Uint8Array, origin: r.origin, name: r.name };
}

/**
 * `fetchFile` for a weights file, kept as a Blob from download to GPU: the body is folded into a
 * Blob every 64 MiB (the browser keeps large Blobs on disk), checked (Content-Length, safetensors
 * header), cached as that Blob, and a cache hit is the cached Blob: a 15 GB checkpoint never
 * sits in the JS heap. Same errors and progress events as fetchFile.
 */
export async function fetchWeights(url: string, role: 'mimiWeights' | 'lmWeights', opts: LoadOptions = {}): Promise<{ blob: Blob; origin: 'network' | 'cache'; name: string }> {
  const r = await download(url, role, opts, true);
  return { blob: r.data as Blob, origin: r.origin, name: r.name };
}

/** Bytes a download keeps in JS chunks before folding them into its Blob. */
const BLOB_FOLD_BYTES = 64 * 1024 * 1024;

/** Checks a weights Blob like verifyFile checks bytes (its safetensors header and tensor ranges). */
async function verifyWeightsBlob(name: string, blob: Blob): Promise<void> {
  try {
    await SafetensorsFile.fromBlob(blob, name, { eagerBytes: 0 });
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e; // an unreadable Blob, not a format error
    throw new ModelSourceError(name, `not a valid safetensors file (${e.message.replace(`${name}: `, '')})`);
  }
}

async function download(url: string, role: FileRole, opts: LoadOptions, asBlob: boolean): Promise<{ data: Uint8Array | Blob; origin: 'network' | 'cache'; name: string }> {
  const name = fileNameOf(url);
  const emit = opts.onProgress ?? (() => {});
  const cache = opts.cache === undefined ? defaultWeightCache() : opts.cache;
  const fail = (err: ModelSourceError): never => {
    emit({ status: 'error', file: name, role, loaded: 0, total: 0, error: err.message });
    throw err;
  };
  const sizeOf = (d: Uint8Array | Blob) => (d instanceof Blob ? d.size : d.byteLength);
  emit({ status: 'initiate', file: name, role, loaded: 0, total: 0 });
  if (cache) {
    let hit: Uint8Array | Blob | null = null;
    try {
      hit = asBlob ? await cache.getBlob(url) : await cache.get(url);
    } catch {
      hit = null; // a broken cache must not block loading: fall through to the network
    }
    if (hit) {
      let ok = true;
      try {
        if (hit instanceof Blob) await verifyWeightsBlob(name, hit);
        else verifyFile(role, name, hit);
      } catch {
        ok = false; // corrupted entry: drop it and download again
        await cache.delete(url).catch(() => false);
      }
      if (ok) {
        emit({ status: 'done', file: name, role, loaded: sizeOf(hit), total: sizeOf(hit), cached: true });
        return { data: hit, origin: 'cache', name };
      }
    }
  }
  const doFetch = opts.fetch ?? globalThis.fetch;
  let res: Response;
  try {
    res = await doFetch(url, { signal: opts.signal, redirect: 'follow' });
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw e;
    return fail(new ModelSourceError(name, `could not fetch ${url}: ${(e as Error)?.message ?? e} (offline, CORS, or a wrong base URL)`));
  }
  if (!res.ok) {
    const hint =
      res.status === 404 ? ' (not found: check the repository, revision and file name)' : res.status === 401 || res.status === 403 ? ' (access denied: gated or private repository?)' : '';
    return fail(new ModelSourceError(name, `HTTP ${res.status} ${res.statusText} for ${url}${hint}`, res.status));
  }
  const lenHeader = res.headers.get('content-length');
  const encoding = res.headers.get('content-encoding');
  const total = lenHeader !== null && (!encoding || encoding === 'identity') ? Number(lenHeader) : 0;
  emit({ status: 'download', file: name, role, loaded: 0, total });
  const interval = opts.progressIntervalMs ?? 100;
  let data: Uint8Array | Blob;
  let loaded = 0;
  try {
    // The body is folded into a Blob as it arrives (JS holds at most blobFoldBytes of chunks);
    // small files (configs, tokenizer) are then read back as bytes.
    let blob: Blob;
    if (!res.body) {
      blob = await res.blob();
      loaded = blob.size;
    } else {
      const reader = res.body.getReader();
      let folded = new Blob([]);
      let chunks: Uint8Array<ArrayBuffer>[] = [];
      let chunkBytes = 0;
      let last = -Infinity;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (total > 0 && loaded + value.byteLength > total) return fail(new ModelSourceError(name, `server sent more than its Content-Length of ${total} bytes`));
        chunks.push(value as Uint8Array<ArrayBuffer>);
        chunkBytes += value.byteLength;
        loaded += value.byteLength;
        if (chunkBytes >= (opts.blobFoldBytes ?? BLOB_FOLD_BYTES)) {
          folded = new Blob([folded, ...chunks]);
          chunks = [];
          chunkBytes = 0;
        }
        const now = Date.now();
        if (now - last >= interval) {
          last = now;
          emit({ status: 'progress', file: name, role, loaded, total });
        }
      }
      blob = new Blob([folded, ...chunks]);
    }
    data = asBlob ? blob : new Uint8Array(await blob.arrayBuffer());
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw e;
    const at = total > 0 ? ` at ${loaded} of ${total} bytes` : ` after ${loaded} bytes`;
    return fail(new ModelSourceError(name, `download interrupted${at} (${(e as Error)?.message ?? e}); retry — nothing was cached`));
  }
  if (total > 0 && loaded !== total) {
    return fail(new ModelSourceError(name, `truncated download: received ${loaded} of ${total} bytes (Content-Length); retry — nothing was cached`));
  }
  try {
    if (data instanceof Blob) await verifyWeightsBlob(name, data);
    else verifyFile(role, name, data);
  } catch (e) {
    return fail(e as ModelSourceError);
  }
  emit({ status: 'progress', file: name, role, loaded, total: total || loaded });
  if (cache) {
    try {
      if (data instanceof Blob) await cache.putBlob(url, data);
      else await cache.put(url, data);
    } catch {
      // Out of quota: the load still succeeds, only offline use is lost.
    }
  }
  emit({ status: 'done', file: name, role, loaded, total: total || loaded });
  return { data, origin: 'network', name };
}

/**
 * A picked weights File, checked without reading it whole: its safetensors header must parse and
 * its tensors fit the file (SafetensorsFile.fromBlob with nothing read eagerly). Returns the File.
 */
export async function checkLocalWeights(file: File, role: FileRole, opts: LoadOptions = {}): Promise<File> {
  const emit = opts.onProgress ?? (() => {});
  emit({ status: 'initiate', file: file.name, role, loaded: 0, total: file.size });
  try {
    await verifyWeightsBlob(file.name, file);
  } catch (e) {
    const err = e instanceof ModelSourceError ? e : new ModelSourceError(file.name, `could not read the local file (${(e as Error)?.message ?? e})`);
    emit({ status: 'error', file: file.name, role, loaded: 0, total: file.size, error: err.message });
    throw err;
  }
  emit({ status: 'done', file: file.name, role, loaded: file.size, total: file.size, cached: true });
  return file;
}

/** Reads a picked File with progress (chunked through its stream when available). */
export async function readLocalFile(file: File, role: FileRole, opts: LoadOptions = {}): Promise<Uint8Array> {
  const emit = opts.onProgress ?? (() => {});
  emit({ status: 'initiate', file: file.name, role, loaded: 0, total: file.size });
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await file.arrayBuffer());
  } catch (e) {
    const err = new ModelSourceError(file.name, `could not read the local file (${(e as Error)?.message ?? e})`);
    emit({ status: 'error', file: file.name, role, loaded: 0, total: file.size, error: err.message });
    throw err;
  }
  if (bytes.byteLength !== file.size) {
    const err = new ModelSourceError(file.name, `read ${bytes.byteLength} of ${file.size} bytes (file changed while reading?)`);
    emit({ status: 'error', file: file.name, role, loaded: bytes.byteLength, total: file.size, error: err.message });
    throw err;
  }
  try {
    verifyFile(role, file.name, bytes);
  } catch (e) {
    emit({ status: 'error', file: file.name, role, loaded: bytes.byteLength, total: file.size, error: (e as Error).message });
    throw e;
  }
  emit({ status: 'done', file: file.name, role, loaded: bytes.byteLength, total: bytes.byteLength, cached: true });
  return bytes;
}

/**
 * Assigns picked files to roles by name: `*.model` → tokenizer; a `.safetensors` named like the
 * release Mimi file (starts with "tokenizer") or containing "mimi" → Mimi weights, any other
 * `.safetensors` → LM weights; `.json` containing "mimi" → Mimi config, another `.json` → LM config.
 * @throws ModelSourceError when weights are missing or a role is ambiguous.
 */
export function classifyFiles(files: readonly File[]): Partial<Record<FileRole, File>> & { mimiWeights: File; lmWeights: File } {
  const lower = (f: File) => f.name.toLowerCase();
  const st = files.filter((f) => lower(f).endsWith('.safetensors'));
  const mimi = st.filter((f) => lower(f).includes('mimi') || lower(f).startsWith('tokenizer'));
  const lm = st.filter((f) => !mimi.includes(f));
  const jsons = files.filter((f) => lower(f).endsWith('.json'));
  const mimiCfg = jsons.filter((f) => lower(f).includes('mimi'));
  const lmCfg = jsons.filter((f) => !mimiCfg.includes(f));
  const tok = files.filter((f) => lower(f).endsWith('.model'));
  const all = files.map((f) => f.name).join(', ') || 'none';
  const one = (list: File[], what: string, required: boolean): File | undefined => {
    if (list.length > 1) throw new ModelSourceError(list.map((f) => f.name).join(', '), `several ${what} files were picked; keep one`);
    if (!list.length && required) throw new ModelSourceError(`<${what}>`, `no ${what} file among the picked files (${all})`);
    return list[0];
  };
  const out = {
    mimiWeights: one(mimi, 'Mimi weights (.safetensors starting with "tokenizer" or containing "mimi")', true)!,
    lmWeights: one(lm, 'LM weights (.safetensors)', true)!,
  } as Partial<Record<FileRole, File>> & { mimiWeights: File; lmWeights: File };
  const mc = one(mimiCfg, 'Mimi config (.json containing "mimi")', false);
  const lc = one(lmCfg, 'LM config (.json)', false);
  const tk = one(tok, 'tokenizer (.model)', false);
  if (mc) out.mimiConfig = mc;
  if (lc) out.lmConfig = lc;
  if (tk) out.tokenizer = tk;
  return out;
}

/** The URL of each role for a hub or URL source (configs/tokenizer may be absent). */
export function sourceUrls(source: HubSource | UrlSource): Partial<Record<FileRole, string>> {
  if (source.kind === 'urls') {
    const out: Partial<Record<FileRole, string>> = { mimiWeights: source.mimiWeights, lmWeights: source.lmWeights };
    if (source.mimiConfig) out.mimiConfig = source.mimiConfig;
    if (source.lmConfig) out.lmConfig = source.lmConfig;
    if (source.tokenizer) out.tokenizer = source.tokenizer;
    return out;
  }
  const f = { ...RELEASE_FILES, ...source.files };
  const u = (file: string) => hubUrl(file, source.baseUrl ?? DEFAULT_HUB_BASE, source.repo ?? DEFAULT_REPO, source.revision ?? DEFAULT_REVISION);
  const out: Partial<Record<FileRole, string>> = { mimiWeights: u(f.mimiWeights), lmWeights: u(f.lmWeights) };
  if (!source.skipTokenizer) out.tokenizer = u(f.tokenizer);
  return out;
}

const ORDER: FileRole[] = ['mimiConfig', 'lmConfig', 'tokenizer', 'mimiWeights', 'lmWeights'];

/**
 * Loads every file of `source` (small files first, then Mimi, then the LM), verified, with
 * progress events and the offline cache (network sources only). Emits one 'ready' at the end.
 * @throws ModelSourceError naming the failing file (after an 'error' event).
 */
export async function loadModelFiles(source: ModelSource, opts: LoadOptions = {}): Promise<ModelFiles> {
  const emit = opts.onProgress ?? (() => {});
  const out: ModelFiles = { mimiWeights: new Uint8Array(0), lmWeights: new Uint8Array(0), mimiConfig: null, lmConfig: null, tokenizer: null, names: {}, origins: {} };
  const cache = opts.cache === undefined ? defaultWeightCache() : opts.cache;
  const set = (role: FileRole, bytes: Uint8Array, name: string, origin: 'network' | 'cache' | 'local') => {
    out.names[role] = name;
    out.origins[role] = origin;
    if (role === 'mimiConfig' || role === 'lmConfig') out[role] = verifyFile(role, name, bytes);
    else if (role === 'tokenizer') out.tokenizer = bytes;
    else out[role] = bytes;
  };
  if (source.kind === 'files') {
    const picked = classifyFiles(source.files);
    for (const role of ORDER) {
      const f = picked[role];
      if (!f) continue;
      if (role === 'mimiWeights' || role === 'lmWeights') {
        // Weights stay in their File: the header is checked now, the data read at load time.
        out[role] = await checkLocalWeights(f, role, opts);
        out.names[role] = f.name;
        out.origins[role] = 'local';
      } else {
        set(role, await readLocalFile(f, role, opts), f.name, 'local');
      }
    }
  } else {
    if (source.kind === 'urls' && (!source.mimiWeights || !source.lmWeights)) {
      throw new ModelSourceError(!source.mimiWeights ? '<Mimi weights URL>' : '<LM weights URL>', 'the URL source needs the Mimi weights URL and the LM weights URL');
    }
    const urls = sourceUrls(source);
    for (const role of ORDER) {
      const url = urls[role];
      if (!url) continue;
      if (role === 'mimiWeights' || role === 'lmWeights') {
        const r = await fetchWeights(url, role, { ...opts, cache });
        out[role] = r.blob;
        out.names[role] = r.name;
        out.origins[role] = r.origin;
      } else {
        const r = await fetchFile(url, role, { ...opts, cache });
        set(role, r.bytes, r.name, r.origin);
      }
    }
  }
  const size = (x: Uint8Array | Blob) => (x instanceof Uint8Array ? x.byteLength : x.size);
  const total = size(out.mimiWeights) + size(out.lmWeights) + (out.tokenizer?.byteLength ?? 0);
  emit({ status: 'ready', file: Object.values(out.names).join(', '), loaded: total, total });
  return out;
}

/** Which of a hub/URL source's files are already in the offline cache. */
export async function cachedStatus(source: HubSource | UrlSource, cache: WeightCache = defaultWeightCache()): Promise<Partial<Record<FileRole, boolean>>> {
  const out: Partial<Record<FileRole, boolean>> = {};
  for (const [role, url] of Object.entries(sourceUrls(source)) as [FileRole, string][]) out[role] = await cache.has(url);
  return out;
}

export { MemoryWeightCache };
