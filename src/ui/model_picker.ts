/**
 * The hub source's model picker: the released Moshi repositories (src/models/catalog.ts) by name,
 * each with its download size and the GPU memory the engine needs, marked as fitting this adapter
 * or not, the largest fitting one preselected (q4 where nothing larger fits), plus "Other
 * repository…" for a mirror or a repository laid out like the release.
 *
 * What fits: the largest tensor against the adapter's maxBufferSize (larger than one binding is
 * bound in row ranges)
 * (navigator.gpu.requestAdapter), and the total against a budget. WebGPU does not report GPU
 * memory, so the budget is the browser's `navigator.deviceMemory` (device RAM in GB, which Chrome
 * caps at 8), 8 GB when absent: a laptop-sized assumption that the user can override by choosing.
 *
 * Modes: 'talk' lists the Moshi repositories; 'transcribe' (the page's Transcribe mode) lists the
 * Kyutai speech-to-text repositories (catalog.ts STT_MODELS), the smallest fitting one preselected.
 */
import { type DeviceBudget, RELEASED_MODELS, STT_MODELS, bestFittingModel, releasedModel, releasedModelGpuBytes, sttModel, sttModelGpuBytes, whyNotFit, whyNotFitStt } from '../models/catalog.ts';
import { formatBytes } from '../models/lm_memory.ts';

export interface ModelOption {
  repo: string;
  label: string;
  /** null until the adapter's limits are known. */
  fits: boolean | null;
  why: string | null;
}

/** Which catalog the picker lists: Moshi (talk) or the STT models (transcribe). */
export type PickerMode = 'talk' | 'transcribe';

/** One listed repository of a mode: its sizes and fit. */
interface Entry {
  repo: string;
  download: number;
  gpu: number;
  why: (b: DeviceBudget) => string | null;
}

function entries(mode: PickerMode): Entry[] {
  if (mode === 'transcribe') return STT_MODELS.map((m) => ({ repo: m.repo, download: m.downloadBytes, gpu: sttModelGpuBytes(m), why: (b) => whyNotFitStt(m, b) }));
  return RELEASED_MODELS.map((m) => ({ repo: m.repo, download: m.downloadBytes, gpu: releasedModelGpuBytes(m), why: (b) => whyNotFit(m, b) }));
}

/** The repository of `mode`'s catalog named `repo`, or null. */
function known(mode: PickerMode, repo: string): string | null {
  return (mode === 'transcribe' ? sttModel(repo)?.repo : releasedModel(repo)?.repo) ?? null;
}

/** What the picker shows (also exposed to tests through the page's test hook). */
export interface ModelPickerState {
  /** The catalog listed now. */
  mode: PickerMode;
  /** Lists another catalog (the page's mode switch) and preselects its best fitting model. */
  setMode(mode: PickerMode): void;
  options: ModelOption[];
  /** The selected repository ('' while "Other repository…" is chosen). */
  selected: string;
  budget: DeviceBudget | null;
  /** Resolves once the adapter has been asked and the options are marked. */
  ready: Promise<void>;
}

const OTHER = '';

function optionLabel(repo: string, download: number, gpu: number, why: string | null | undefined): string {
  const fit = why === undefined ? '' : why === null ? ' · fits' : ' · too large here';
  return `${repo.replace(/^kyutai\//, '')} — ${formatBytes(download)} download, ${formatBytes(gpu)} GPU${fit}`;
}

/**
 * Fills `select` with the released models and keeps `repoInput` (the repository the hub source
 * reads) in step with it. `requested` (the page's ?hubRepo=) wins over the preselection.
 */
export function mountModelPicker(root: HTMLElement, select: HTMLSelectElement, repoInput: HTMLInputElement, requested: string | null): ModelPickerState {
  const repoLabel = root.querySelector<HTMLElement>('.hub-repo');
  const hint = root.querySelector<HTMLElement>('.model-fit');
  let list = entries('talk');
  const state: ModelPickerState = {
    mode: 'talk',
    setMode: (mode) => setMode(mode),
    options: list.map((m) => ({ repo: m.repo, label: optionLabel(m.repo, m.download, m.gpu, undefined), fits: null, why: null })),
    selected: '',
    budget: null,
    ready: Promise.resolve(),
  };
  const render = () => {
    select.replaceChildren(
      ...state.options.map((o) => new Option(o.label, o.repo)),
      new Option('Other repository…', OTHER),
    );
  };
  /** Selects `repo` (a listed one, or any other: "Other repository…" with the field shown). */
  const choose = (repo: string) => {
    const k = known(state.mode, repo);
    select.value = k ?? OTHER;
    state.selected = k ?? OTHER;
    repoInput.value = k ?? repo;
    if (repoLabel) repoLabel.hidden = Boolean(k);
  };
  /** Marks every option of the current mode as fitting the budget or not. */
  const mark = (budget: DeviceBudget) => {
    state.options = list.map((m) => {
      const why = m.why(budget);
      return { repo: m.repo, label: optionLabel(m.repo, m.download, m.gpu, why), fits: why === null, why };
    });
  };
  /** The preselection of the mode: Moshi's largest fitting bf16/q8/q4 (moshiko), the smallest fitting STT model. */
  const preselect = (budget: DeviceBudget): string =>
    state.mode === 'talk' ? bestFittingModel('moshiko', budget).repo : (state.options.find((o) => o.fits)?.repo ?? state.options[0].repo);
  const setMode = (mode: PickerMode) => {
    if (mode === state.mode) return;
    state.mode = mode;
    list = entries(mode);
    state.options = list.map((m) => ({ repo: m.repo, label: optionLabel(m.repo, m.download, m.gpu, undefined), fits: null, why: null }));
    if (state.budget) mark(state.budget);
    render();
    choose(state.budget ? preselect(state.budget) : state.options[0].repo);
  };
  render();
  choose(requested ?? repoInput.value);
  select.onchange = () => {
    if (select.value !== OTHER) return choose(select.value);
    state.selected = OTHER;
    if (repoLabel) repoLabel.hidden = false;
    repoInput.focus();
  };

  state.ready = (async () => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
    if (!adapter) {
      if (hint) hint.textContent = 'No WebGPU adapter: sizes shown, fit unknown.';
      return;
    }
    const mem = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
    const budget: DeviceBudget = {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      totalBytes: (mem ?? 8) * 1e9,
    };
    state.budget = budget;
    mark(budget);
    const keep = select.value;
    render();
    select.value = keep;
    if (!requested) choose(preselect(budget));
    if (hint) {
      const best = releasedModel(state.selected);
      hint.textContent = `This adapter's buffers hold up to ${formatBytes(budget.maxBufferSize)}; assumed GPU memory ${formatBytes(budget.totalBytes!)} (${mem ? 'the browser reports that much device memory' : 'not reported'}; WebGPU does not report GPU memory).${best && !requested ? ` Preselected: the largest model that fits${best.format === 'mlx-q4' ? ' (q4: nothing larger does)' : ''}.` : ''}`;
    }
  })();
  return state;
}
