/**
 * Turns a ModelSpec (hub / URLs / picked files) into the bytes the loader needs, reporting typed
 * progress events per file. Host-agnostic (page or Worker): uses fetch and File/Blob only.
 */
import type { LoadEvent, ModelSpec } from './worker_api.ts';

/** The released files of kyutai/moshiko-pytorch-bf16 (moshi/models/loaders.py names). */
export const HUB_FILES = {
  lm: 'model.safetensors',
  mimi: 'tokenizer-e351c8d8-checkpoint125.safetensors',
  tokenizer: 'tokenizer_spm_32k_3.model',
} as const;

/** A model file that could not be found, fetched or read. The message names the file. */
export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

/** Raw model inputs: config JSON (null = the released preset), weight bytes, optional tokenizer. */
export interface ModelBytes {
  mimiConfig: unknown | null;
  mimiWeights: Uint8Array;
  lmConfig: unknown | null;
  lmWeights: Uint8Array;
  tokenizer: Uint8Array | null;
  names: { mimi: string; lm: string; tokenizer?: string };
}

type Progress = (e: LoadEvent) => void;

/** Fetches `url` with per-chunk progress. Throws ModelSourceError naming the URL and HTTP status. */
export async function fetchBytes(url: string, onProgress: Progress, signal?: AbortSignal): Promise<Uint8Array> {
  const file = url.split('/').pop()?.split('?')[0] || url;
  onProgress({ type: 'progress', status: 'initiate', file, loaded: 0, total: 0 });
  let r: Response;
  try {
    r = await fetch(url, { signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ModelSourceError(`could not fetch ${url}: ${(e as Error).message} (network error, CORS, or a wrong base URL)`);
  }
  if (!r.ok) throw new ModelSourceError(`could not fetch ${url}: HTTP ${r.status} ${r.statusText}${r.status === 404 ? ' (file missing: check the URL)' : ''}`);
  const total = Number(r.headers.get('content-length') ?? 0);
  if (!r.body) {
    const b = new Uint8Array(await r.arrayBuffer());
    onProgress({ type: 'progress', status: 'done', file, loaded: b.byteLength, total: b.byteLength });
    return b;
  }
  const reader = r.body.getReader();
  let out = new Uint8Array(total > 0 ? total : 1 << 20);
  let n = 0;
  let last = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.byteLength > out.byteLength) {
      const grown = new Uint8Array(Math.max(out.byteLength * 2, n + value.byteLength));
      grown.set(out.subarray(0, n));
      out = grown;
    }
    out.set(value, n);
    n += value.byteLength;
    const now = Date.now();
    if (now - last > 100) {
      last = now;
      onProgress({ type: 'progress', status: 'progress', file, loaded: n, total });
    }
  }
  onProgress({ type: 'progress', status: 'done', file, loaded: n, total: n });
  return n === out.byteLength ? out : out.slice(0, n);
}

async function readFile(f: File, onProgress: Progress): Promise<Uint8Array> {
  onProgress({ type: 'progress', status: 'initiate', file: f.name, loaded: 0, total: f.size });
  const b = new Uint8Array(await f.arrayBuffer());
  onProgress({ type: 'progress', status: 'done', file: f.name, loaded: b.byteLength, total: b.byteLength });
  return b;
}

const json = (bytes: Uint8Array, name: string): unknown => {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ModelSourceError(`${name} is not valid JSON (${(e as Error).message})`);
  }
};

/**
 * Classifies picked files by name: `*.model` = tokenizer; a `.safetensors` whose name contains
 * "mimi" or starts with "tokenizer" = Mimi, any other `.safetensors` = the LM; a `.json` with
 * "mimi" in its name = Mimi config, any other `.json` = LM config (files named config.json
 * included). Throws ModelSourceError when a weight file is missing or ambiguous.
 */
export function classifyFiles(files: readonly File[]): { mimiWeights: File; lmWeights: File; mimiConfig: File | null; lmConfig: File | null; tokenizer: File | null } {
  const lower = (f: File) => f.name.toLowerCase();
  const st = files.filter((f) => lower(f).endsWith('.safetensors'));
  const mimi = st.filter((f) => lower(f).includes('mimi') || lower(f).startsWith('tokenizer'));
  const lm = st.filter((f) => !mimi.includes(f));
  const jsons = files.filter((f) => lower(f).endsWith('.json'));
  const mimiCfg = jsons.filter((f) => lower(f).includes('mimi'));
  const lmCfg = jsons.filter((f) => !mimiCfg.includes(f));
  const tok = files.filter((f) => lower(f).endsWith('.model'));
  const one = (list: File[], what: string, required: boolean): File | null => {
    if (list.length > 1) throw new ModelSourceError(`several ${what} files were picked (${list.map((f) => f.name).join(', ')}); pick one`);
    if (!list.length && required) throw new ModelSourceError(`no ${what} file among the picked files (${files.map((f) => f.name).join(', ') || 'none'})`);
    return list[0] ?? null;
  };
  return {
    mimiWeights: one(mimi, 'Mimi weights (.safetensors with "mimi" or "tokenizer" in the name)', true)!,
    lmWeights: one(lm, 'LM weights (.safetensors)', true)!,
    mimiConfig: one(mimiCfg, 'Mimi config (.json with "mimi" in the name)', false),
    lmConfig: one(lmCfg, 'LM config (.json)', false),
    tokenizer: one(tok, 'tokenizer (.model)', false),
  };
}

/** Fetches or reads every file of `spec`. */
export async function resolveModelBytes(spec: ModelSpec, onProgress: Progress, signal?: AbortSignal): Promise<ModelBytes> {
  if (spec.kind === 'files') {
    const c = classifyFiles(spec.files);
    return {
      mimiConfig: c.mimiConfig ? json(await readFile(c.mimiConfig, onProgress), c.mimiConfig.name) : null,
      lmConfig: c.lmConfig ? json(await readFile(c.lmConfig, onProgress), c.lmConfig.name) : null,
      tokenizer: c.tokenizer ? await readFile(c.tokenizer, onProgress) : null,
      mimiWeights: await readFile(c.mimiWeights, onProgress),
      lmWeights: await readFile(c.lmWeights, onProgress),
      names: { mimi: c.mimiWeights.name, lm: c.lmWeights.name, tokenizer: c.tokenizer?.name },
    };
  }
  if (spec.kind === 'hub') {
    if (!spec.baseUrl || !spec.repo) throw new ModelSourceError('the hub source needs a base URL and a repository (e.g. https://huggingface.co and kyutai/moshiko-pytorch-bf16)');
    const base = `${spec.baseUrl.replace(/\/+$/, '')}/${spec.repo}/resolve/main`;
    return {
      mimiConfig: null,
      lmConfig: null,
      tokenizer: await fetchBytes(`${base}/${HUB_FILES.tokenizer}`, onProgress, signal),
      mimiWeights: await fetchBytes(`${base}/${HUB_FILES.mimi}`, onProgress, signal),
      lmWeights: await fetchBytes(`${base}/${HUB_FILES.lm}`, onProgress, signal),
      names: { mimi: HUB_FILES.mimi, lm: HUB_FILES.lm, tokenizer: HUB_FILES.tokenizer },
    };
  }
  if (!spec.mimiWeights || !spec.lmWeights) throw new ModelSourceError('the URL source needs at least the Mimi weights URL and the LM weights URL');
  const get = (u: string) => fetchBytes(u, onProgress, signal);
  return {
    mimiConfig: spec.mimiConfig ? json(await get(spec.mimiConfig), spec.mimiConfig) : null,
    lmConfig: spec.lmConfig ? json(await get(spec.lmConfig), spec.lmConfig) : null,
    tokenizer: spec.tokenizer ? await get(spec.tokenizer) : null,
    mimiWeights: await get(spec.mimiWeights),
    lmWeights: await get(spec.lmWeights),
    names: { mimi: spec.mimiWeights, lm: spec.lmWeights, tokenizer: spec.tokenizer ?? undefined },
  };
}
