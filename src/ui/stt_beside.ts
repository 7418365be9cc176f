/**
 * The model card's "Your words too" choice: a Kyutai speech-to-text model to load beside Moshi
 * (worker_api.ts ModelSpec.stt), so that the assistant shows the user's words beside Moshi's. One
 * Mimi encode serves both (the STT model reads all its n_q codes, Moshi the first 8).
 *
 * Choices: off; the released STT repositories that can run beside Moshi (catalog.ts STT_MODELS
 * with `audio_silence_prefix_seconds` 0: the shared encoder cannot give the STT model a silence
 * prefix Moshi does not hear), fetched from the hub base URL of the card; local files (its
 * config.json, .safetensors and tokenizer .model); URLs. The hint says the GPU memory of both
 * models together against the picker's budget (src/ui/model_picker.ts) when both are released models.
 *
 * Automation: `?sttConfig=URL&sttWeights=URL[&sttTokenizer=URL]` chooses URLs and fills them.
 */
import { type DeviceBudget, STT_MODELS, releasedModel, releasedModelGpuBytes, sttModel, sttModelGpuBytes, whyNotFit, whyNotFitStt } from '../models/catalog.ts';
import { formatBytes } from '../models/lm_memory.ts';
import type { LmSource } from '../weights/sources.ts';
import type { ModelPickerState } from './model_picker.ts';

/** The released STT models that can share Moshi's Mimi encode (no silence prefix). */
export const STT_BESIDE_MODELS = STT_MODELS.filter((m) => m.config.stt?.audioSilencePrefixSeconds === 0);

/** The markup of the choice (mounted into the model card by src/ui/app_markup.ts). */
export const STT_BESIDE_MARKUP = `
<div class="stt-beside">
  <label>Your words too <select name="sttBeside"></select></label>
  <div class="stt-beside-src" data-stt="files" hidden>
    <label>Speech-to-text files <input type="file" name="sttFiles" multiple accept=".json,.safetensors,.model"></label>
    <p class="hint">Its <code>config.json</code> (model_type "stt"), weights <code>.safetensors</code> and, for words instead of token ids, its tokenizer <code>.model</code>.</p>
  </div>
  <div class="stt-beside-src" data-stt="urls" hidden>
    <label>STT config URL <input type="url" name="sttConfig"></label>
    <label>STT weights URL <input type="url" name="sttWeights"></label>
    <label>STT tokenizer URL <input type="url" name="sttTokenizer" placeholder="(optional: captions show token ids)"></label>
  </div>
  <p class="hint stt-beside-fit">A speech-to-text model beside Moshi shows what you say under “You said”, about half a second behind your voice.</p>
</div>`;

export interface SttBeside {
  /** The chosen STT source for ModelSpec.stt, or null ("off"). `hubBase`: the card's hub base URL. */
  source(hubBase: string): LmSource | null;
  /** The hint's text (also for tests). */
  readonly hint: string;
}

/** What both models take together, and whether that fits `budget` (null: unknown). */
export function besideFit(moshiRepo: string, sttRepo: string, budget: DeviceBudget | null): { text: string; fits: boolean | null } | null {
  const moshi = releasedModel(moshiRepo);
  const stt = sttModel(sttRepo);
  if (!moshi || !stt) return null;
  const a = releasedModelGpuBytes(moshi);
  const b = sttModelGpuBytes(stt);
  const sum = `${moshi.repo.replace(/^kyutai\//, '')} ${formatBytes(a)} + ${stt.repo.replace(/^kyutai\//, '')} ${formatBytes(b)} = ${formatBytes(a + b)} of GPU memory`;
  if (!budget) return { text: `${sum}; fit unknown (no WebGPU adapter yet).`, fits: null };
  const why = whyNotFit(moshi, budget) ?? whyNotFitStt(stt, budget);
  if (why) return { text: `${sum}: does not fit (${why}).`, fits: false };
  if (budget.totalBytes !== null && a + b > budget.totalBytes) return { text: `${sum}: over the assumed ${formatBytes(budget.totalBytes)}; pick a smaller Moshi (q4) or leave this off.`, fits: false };
  return { text: `${sum}: both fit${budget.totalBytes !== null ? ` the assumed ${formatBytes(budget.totalBytes)}` : ''}.`, fits: true };
}

/** Mounts the choice into `root` (the page, with STT_BESIDE_MARKUP in it) beside the Moshi `picker`. */
export function mountSttBeside(root: HTMLElement, picker: ModelPickerState, hubModel: HTMLSelectElement): SttBeside {
  const q = <T extends HTMLElement>(sel: string): T => {
    const e = root.querySelector<T>(sel);
    if (!e) throw new Error(`page markup is missing ${sel}`);
    return e;
  };
  const select = q<HTMLSelectElement>('select[name="sttBeside"]');
  const hintEl = q('.stt-beside-fit');
  const input = (name: string) => q<HTMLInputElement>(`[name="${name}"]`);
  select.replaceChildren(
    new Option('off', ''),
    ...STT_BESIDE_MODELS.map((m) => new Option(`${m.repo.replace(/^kyutai\//, '')} (${m.languages}) — ${formatBytes(m.downloadBytes)} download, ${formatBytes(sttModelGpuBytes(m))} GPU`, m.repo)),
    new Option('Local files…', 'files'),
    new Option('URLs…', 'urls'),
  );
  const params = new URLSearchParams(location.search);
  const fromQuery = { sttConfig: params.get('sttConfig'), sttWeights: params.get('sttWeights'), sttTokenizer: params.get('sttTokenizer') };
  if (fromQuery.sttWeights) {
    select.value = 'urls';
    for (const [k, v] of Object.entries(fromQuery)) if (v) input(k).value = new URL(v, location.href).href;
  }
  const state = { hint: hintEl.textContent ?? '' };
  const refresh = () => {
    root.querySelectorAll<HTMLElement>('.stt-beside-src').forEach((d) => (d.hidden = d.dataset.stt !== select.value));
    const fit = sttModel(select.value) ? besideFit(picker.selected, select.value, picker.budget) : null;
    if (fit) hintEl.textContent = fit.text;
    else if (select.value) hintEl.textContent = 'A speech-to-text model beside Moshi shows what you say under “You said”; it must read the Mimi codes Moshi reads (the same codebook size) and have no silence prefix.';
    hintEl.dataset.fits = fit?.fits === true ? '1' : fit?.fits === false ? '0' : '';
    state.hint = hintEl.textContent ?? '';
  };
  select.addEventListener('change', refresh);
  hubModel.addEventListener('change', refresh);
  void picker.ready.then(refresh);
  refresh();
  return {
    get hint() {
      return state.hint;
    },
    source(hubBase) {
      const v = select.value;
      if (!v) return null;
      if (v === 'files') return { kind: 'files', files: [...(input('sttFiles').files ?? [])] };
      const opt = (k: string) => input(k).value.trim() || null;
      if (v === 'urls') return { kind: 'urls', lmConfig: opt('sttConfig'), lmWeights: input('sttWeights').value.trim(), tokenizer: opt('sttTokenizer') };
      const m = sttModel(v)!;
      return { kind: 'hub', baseUrl: hubBase, repo: m.repo, files: { lmConfig: m.configFile, lmWeights: m.lmFile, tokenizer: m.tokenizerFile } };
    },
  };
}
