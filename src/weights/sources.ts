/**
 * Where model files come from, with streamed progress and an offline cache.
 *
 * Sources:
 * - `hub`: the released Mimi + Moshi on the Hugging Face hub or a mirror, URL
 *   `${baseUrl}/${repo}/resolve/${revision}/${file}` (default https://huggingface.co,
 *   kyutai/moshiko-pytorch-bf16, main). File names as in moshi/models/loaders.py (MIMI_NAME,
 *   MOSHI_NAME, TEXT_TOKENIZER_NAME); the released configs are built in (no config files).
 * - `urls`: any URLs to a config + safetensors pair per model (configs optional) and a tokenizer,
 *   optionally with the sha256 of each.
 * - `files`: a local folder or files picked by the user (File objects), classified by name.
 *
 * The seams: src/weights/hub.ts builds URLs and reads what the hub announces (sha256, size),
 * src/weights/download.ts fetches one file (stall timeout, Cancel, size, type and sha256 checks,
 * the cache), src/weights/verify.ts checks a file's format and holds the errors. This module
 * puts them together per source.
 *
 * Progress events follow transformers.js: per file `initiate` → `download` (headers in, total
 * known) → `progress`* → `done` (or `initiate` → `done` with `cached: true` from the cache), then
 * one `ready` for the whole set; `error` before a failure is thrown. `loaded`/`total` are bytes.
 * Added here: `retry` (an interrupted download tries again; then `download` again, with
 * `resumedFrom` when it continues from the stored bytes), `fileIndex`/`fileCount` on every file's
 * events, and with LoadOptions.probeSizes one `plan` first (every file and its size).
 * Nothing unverified is cached or returned; errors are ModelSourceError naming the file (see
 * download.ts for the list). Cancel (LoadOptions.signal) rejects with an AbortError.
 */
import { MemoryWeightCache, type WeightCache, defaultWeightCache } from './cache.ts';
import { type LoadOptions, type PlannedFile, download, probeSize } from './download.ts';
import { type FileRole, type HubSource, type UrlSource, fileNameOf, sourceUrls } from './hub.ts';
import { ModelSourceError, verifyFile, verifyWeightsBlob } from './verify.ts';

export { DEFAULT_HUB_BASE, DEFAULT_REPO, DEFAULT_REVISION, RELEASE_FILES, fileNameOf, hubUrl, sourceUrls, announcedFile } from './hub.ts';
export type { FileRole, HubSource, UrlSource, AnnouncedFile } from './hub.ts';
export type { LoadOptions, PlannedFile, ProgressCallback, ProgressInfo, ProgressStatus } from './download.ts';
export { DownloadStalledError, IntegrityError, ModelSourceError, StorageQuotaError, type ModelSourceErrorCode, type TokenizerCheck, checkSentencePieceModel, verifyFile, verifyWeightsBlob } from './verify.ts';

export interface FilesSource {
  kind: 'files';
  /** Picked files or a folder's contents (e.g. from <input webkitdirectory>). */
  files: readonly File[];
}

export type ModelSource = HubSource | UrlSource | FilesSource;

/**
 * Where an LM that runs on another model's Mimi comes from (a speech-to-text model beside Moshi):
 * as ModelSource without the Mimi files (a hub source's Mimi file is not fetched).
 */
export type LmSource = HubSource | (Omit<UrlSource, 'mimiWeights' | 'mimiConfig'> & { kind: 'urls' }) | FilesSource;

/** The files of an LmSource: the LM's config, weights and tokenizer (ModelFiles without the Mimi). */
export type LmFiles = Pick<ModelFiles, 'lmWeights' | 'lmConfig' | 'tokenizer' | 'names' | 'origins'>;

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

/**
 * Downloads one small file (config, tokenizer; weights work too, read whole) with streamed
 * progress, verified (see download.ts), through `cache` (key = URL). Redirects are followed.
 * @param sha256 the file's expected sha256, when the source knows it.
 * @throws ModelSourceError naming the file; the signal's AbortError when cancelled.
 */
export async function fetchFile(url: string, role: FileRole, opts: LoadOptions = {}, sha256: string | null = null): Promise<{ bytes: Uint8Array; origin: 'network' | 'cache'; name: string }> {
  const r = await download(url, role, opts, false, sha256);
  return { bytes: r.data as Uint8Array, origin: r.origin, name: r.name };
}

/**
 * `fetchFile` for a weights file, kept as a Blob from download to GPU: the body is folded into a
 * Blob every 64 MiB (the browser keeps large Blobs on disk), hashed as it arrives, checked, cached
 * as that Blob, and a cache hit is the cached Blob: a 15 GB checkpoint never sits in the JS heap.
 * Same errors and progress events as fetchFile.
 */
export async function fetchWeights(url: string, role: 'mimiWeights' | 'lmWeights', opts: LoadOptions = {}, sha256: string | null = null): Promise<{ blob: Blob; origin: 'network' | 'cache'; name: string }> {
  const r = await download(url, role, opts, true, sha256);
  return { blob: r.data as Blob, origin: r.origin, name: r.name };
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
    const err = e instanceof ModelSourceError ? e : new ModelSourceError(file.name, `could not read the local file (${(e as Error)?.message ?? e})`, undefined, 'local');
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
    const err = new ModelSourceError(file.name, `could not read the local file (${(e as Error)?.message ?? e})`, undefined, 'local');
    emit({ status: 'error', file: file.name, role, loaded: 0, total: file.size, error: err.message });
    throw err;
  }
  if (bytes.byteLength !== file.size) {
    const err = new ModelSourceError(file.name, `read ${bytes.byteLength} of ${file.size} bytes (file changed while reading?)`, undefined, 'local');
    emit({ status: 'error', file: file.name, role, loaded: bytes.byteLength, total: file.size, error: err.message });
    throw err;
  }
  try {
    await verifyFile(role, file.name, bytes, opts.verifyTokenizer);
  } catch (e) {
    emit({ status: 'error', file: file.name, role, loaded: bytes.byteLength, total: file.size, error: (e as Error).message });
    throw e;
  }
  emit({ status: 'done', file: file.name, role, loaded: bytes.byteLength, total: bytes.byteLength, cached: true });
  return bytes;
}

/**
 * The picked files that could fill each role, by name: `*.model` → tokenizer; a `.safetensors`
 * named like the release Mimi file (starts with "tokenizer") or containing "mimi" → Mimi weights,
 * any other `.safetensors` → LM weights; `.json` containing "mimi" → Mimi config, another `.json`
 * → LM config. A role with several candidates needs a choice (the page shows a chooser).
 */
export function fileCandidates(files: readonly File[]): Record<FileRole, File[]> {
  const lower = (f: File) => f.name.toLowerCase();
  const st = files.filter((f) => lower(f).endsWith('.safetensors'));
  const mimi = st.filter((f) => lower(f).includes('mimi') || lower(f).startsWith('tokenizer'));
  const jsons = files.filter((f) => lower(f).endsWith('.json'));
  const mimiCfg = jsons.filter((f) => lower(f).includes('mimi'));
  return {
    mimiWeights: mimi,
    lmWeights: st.filter((f) => !mimi.includes(f)),
    mimiConfig: mimiCfg,
    lmConfig: jsons.filter((f) => !mimiCfg.includes(f)),
    tokenizer: files.filter((f) => lower(f).endsWith('.model')),
  };
}

/** The one file of `list` for a role named `what`. @throws ModelSourceError for several, or for none when `required` */
function onePicked(list: File[], what: string, required: boolean, files: readonly File[]): File | undefined {
  if (list.length > 1) throw new ModelSourceError(list.map((f) => f.name).join(', '), `several ${what} files were picked; keep one`, undefined, 'source');
  if (!list.length && required) throw new ModelSourceError(`<${what}>`, `no ${what} file among the picked files (${files.map((f) => f.name).join(', ') || 'none'})`, undefined, 'source');
  return list[0];
}

/**
 * Assigns picked files to roles by name (fileCandidates).
 * @throws ModelSourceError when weights are missing or a role is ambiguous.
 */
export function classifyFiles(files: readonly File[]): Partial<Record<FileRole, File>> & { mimiWeights: File; lmWeights: File } {
  const c = fileCandidates(files);
  const one = (list: File[], what: string, required: boolean) => onePicked(list, what, required, files);
  const out = {
    mimiWeights: one(c.mimiWeights, 'Mimi weights (.safetensors starting with "tokenizer" or containing "mimi")', true)!,
    lmWeights: one(c.lmWeights, 'LM weights (.safetensors)', true)!,
  } as Partial<Record<FileRole, File>> & { mimiWeights: File; lmWeights: File };
  const mc = one(c.mimiConfig, 'Mimi config (.json containing "mimi")', false);
  const lc = one(c.lmConfig, 'LM config (.json)', false);
  const tk = one(c.tokenizer, 'tokenizer (.model)', false);
  if (mc) out.mimiConfig = mc;
  if (lc) out.lmConfig = lc;
  if (tk) out.tokenizer = tk;
  return out;
}

/**
 * Assigns picked files of an LM without its Mimi (LmSource) to roles: the one `.safetensors` →
 * LM weights, the one `.json` → LM config, the optional `.model` → tokenizer.
 * @throws ModelSourceError when the weights are missing or a role has several files.
 */
export function classifyLmFiles(files: readonly File[]): Partial<Record<FileRole, File>> & { lmWeights: File } {
  const by = (ext: string) => files.filter((f) => f.name.toLowerCase().endsWith(ext));
  const one = (list: File[], what: string, required: boolean) => onePicked(list, what, required, files);
  const out: Partial<Record<FileRole, File>> & { lmWeights: File } = { lmWeights: one(by('.safetensors'), 'LM weights (.safetensors)', true)! };
  const lc = one(by('.json'), 'LM config (.json)', false);
  const tk = one(by('.model'), 'tokenizer (.model)', false);
  if (lc) out.lmConfig = lc;
  if (tk) out.tokenizer = tk;
  return out;
}

const ORDER: FileRole[] = ['mimiConfig', 'lmConfig', 'tokenizer', 'mimiWeights', 'lmWeights'];

/**
 * Loads every file of `source` (small files first, then Mimi, then the LM), verified, with
 * progress events and the offline cache (network sources only). Emits one 'ready' at the end.
 * @throws ModelSourceError naming the failing file (after an 'error' event).
 */
export async function loadModelFiles(source: ModelSource, opts: LoadOptions = {}): Promise<ModelFiles> {
  return loadFiles(source, opts, false);
}

/**
 * Loads the files of an LM that runs on another model's Mimi (LmSource: a speech-to-text model
 * beside Moshi) as loadModelFiles does, without any Mimi file.
 * @throws ModelSourceError naming the failing file (after an 'error' event).
 */
export async function loadLmFiles(source: LmSource, opts: LoadOptions = {}): Promise<LmFiles> {
  const { mimiWeights: _m, mimiConfig: _c, ...lm } = await loadFiles(source as ModelSource, opts, true);
  return lm;
}

async function loadFiles(source: ModelSource, opts: LoadOptions, lmOnly: boolean): Promise<ModelFiles> {
  const emit = opts.onProgress ?? (() => {});
  const out: ModelFiles = { mimiWeights: new Uint8Array(0), lmWeights: new Uint8Array(0), mimiConfig: null, lmConfig: null, tokenizer: null, names: {}, origins: {} };
  const cache = opts.cache === undefined ? defaultWeightCache() : opts.cache;
  const set = (role: FileRole, bytes: Uint8Array, name: string, origin: 'network' | 'cache' | 'local') => {
    out.names[role] = name;
    out.origins[role] = origin;
    if (role === 'mimiConfig' || role === 'lmConfig') out[role] = JSON.parse(new TextDecoder().decode(bytes)) as unknown; // verified already
    else if (role === 'tokenizer') out.tokenizer = bytes;
    else out[role] = bytes;
  };
  if (source.kind === 'files') {
    const picked: Partial<Record<FileRole, File>> = lmOnly ? classifyLmFiles(source.files) : classifyFiles(source.files);
    const roles = ORDER.filter((r) => picked[r]);
    for (const [i, role] of roles.entries()) {
      const f = picked[role]!;
      opts.signal?.throwIfAborted();
      const fileOpts: LoadOptions = { ...opts, onProgress: (e) => emit({ ...e, local: true, fileIndex: i + 1, fileCount: roles.length }) };
      if (role === 'mimiWeights' || role === 'lmWeights') {
        // Weights stay in their File: the header is checked now, the data read at load time.
        out[role] = await checkLocalWeights(f, role, fileOpts);
        out.names[role] = f.name;
        out.origins[role] = 'local';
      } else {
        set(role, await readLocalFile(f, role, fileOpts), f.name, 'local');
      }
    }
  } else {
    if (source.kind === 'urls' && ((!lmOnly && !source.mimiWeights) || !source.lmWeights)) {
      throw new ModelSourceError(!source.lmWeights ? '<LM weights URL>' : '<Mimi weights URL>', lmOnly ? 'the URL source needs the LM weights URL' : 'the URL source needs the Mimi weights URL and the LM weights URL', undefined, 'source');
    }
    const urls = sourceUrls(source);
    const shas = source.kind === 'urls' ? (source.sha256 ?? {}) : {};
    const roles = ORDER.filter((r) => urls[r] && !(lmOnly && (r === 'mimiWeights' || r === 'mimiConfig')));
    if (opts.probeSizes) {
      // The whole load's size up front: the cache's metas, the server's HEAD answers for the rest.
      const plan: PlannedFile[] = await Promise.all(
        roles.map(async (role) => {
          const url = urls[role]!;
          const meta = cache ? await cache.getMeta(url).catch(() => null) : null;
          return { file: fileNameOf(url), role, bytes: meta ? meta.size : await probeSize(url, opts), cached: !!meta };
        }),
      );
      emit({ status: 'plan', file: plan.map((f) => f.file).join(', '), loaded: 0, total: plan.reduce((n, f) => n + (f.bytes ?? 0), 0), plan });
    }
    for (const [i, role] of roles.entries()) {
      const url = urls[role]!;
      opts.signal?.throwIfAborted(); // Cancel: no further file is requested
      // Each event says which of the load's files it is (for a total over the load).
      const fileOpts: LoadOptions = { ...opts, cache, onProgress: (e) => emit({ ...e, fileIndex: i + 1, fileCount: roles.length }) };
      if (role === 'mimiWeights' || role === 'lmWeights') {
        const r = await fetchWeights(url, role, fileOpts, shas[role] ?? null);
        out[role] = r.blob;
        out.names[role] = r.name;
        out.origins[role] = r.origin;
      } else {
        const r = await fetchFile(url, role, fileOpts, shas[role] ?? null);
        set(role, r.bytes, r.name, r.origin);
      }
    }
  }
  const size = (x: Uint8Array | Blob) => (x instanceof Uint8Array ? x.byteLength : x.size);
  const total = size(out.mimiWeights) + size(out.lmWeights) + (out.tokenizer?.byteLength ?? 0);
  emit({ status: 'ready', file: Object.values(out.names).join(', '), loaded: total, total });
  return out;
}

export { MemoryWeightCache };
