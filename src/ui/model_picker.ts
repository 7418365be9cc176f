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
 */
import { type DeviceBudget, RELEASED_MODELS, bestFittingModel, releasedModel, releasedModelGpuBytes, whyNotFit } from '../models/catalog.ts';
import { formatBytes } from '../models/lm_memory.ts';

export interface ModelOption {
  repo: string;
  label: string;
  /** null until the adapter's limits are known. */
  fits: boolean | null;
  why: string | null;
}

/** What the picker shows (also exposed to tests through the page's test hook). */
export interface ModelPickerState {
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
  const state: ModelPickerState = {
    options: RELEASED_MODELS.map((m) => ({ repo: m.repo, label: optionLabel(m.repo, m.downloadBytes, releasedModelGpuBytes(m), undefined), fits: null, why: null })),
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
  /** Selects `repo` (a released one, or any other: "Other repository…" with the field shown). */
  const choose = (repo: string) => {
    const known = releasedModel(repo);
    select.value = known ? known.repo : OTHER;
    state.selected = known ? known.repo : OTHER;
    repoInput.value = known ? known.repo : repo;
    if (repoLabel) repoLabel.hidden = Boolean(known);
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
    for (const o of state.options) {
      const m = releasedModel(o.repo)!;
      o.why = whyNotFit(m, budget);
      o.fits = o.why === null;
      o.label = optionLabel(o.repo, m.downloadBytes, releasedModelGpuBytes(m), o.why);
    }
    const keep = select.value;
    render();
    select.value = keep;
    if (!requested) choose(bestFittingModel('moshiko', budget).repo);
    if (hint) {
      const best = releasedModel(state.selected);
      hint.textContent = `This adapter's buffers hold up to ${formatBytes(budget.maxBufferSize)}; assumed GPU memory ${formatBytes(budget.totalBytes!)} (${mem ? 'the browser reports that much device memory' : 'not reported'}; WebGPU does not report GPU memory).${best && !requested ? ` Preselected: the largest model that fits${best.format === 'mlx-q4' ? ' (q4: nothing larger does)' : ''}.` : ''}`;
    }
  })();
  return state;
}
