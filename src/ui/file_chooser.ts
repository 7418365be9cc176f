/**
 * The "Local files" source's chooser: when the picked folder or files hold several candidates for
 * one role (two LM configs, two LM checkpoints, …; src/weights/sources.ts `fileCandidates` names
 * the rules), a select per such role lets the user pick one, instead of a load error; `files()`
 * returns the picked files with only the chosen candidate of each such role.
 */
import { type FileRole, fileCandidates } from '../weights/sources.ts';

const ROLE_LABELS: Record<FileRole, string> = {
  mimiConfig: 'Mimi config',
  mimiWeights: 'Mimi weights',
  lmConfig: 'LM config',
  lmWeights: 'LM weights',
  tokenizer: 'Tokenizer',
};

export interface FileChooser {
  /** The picked files, one per role where a choice was shown. */
  files(): File[];
  /** Roles that have a chooser now. */
  readonly choices: FileRole[];
}

/** A file's name as the user knows it (its path inside a picked folder). */
const shownName = (f: File) => (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;

/** Keeps `container` filled with one select per ambiguous role of the files in `inputs`. */
export function mountFileChooser(container: HTMLElement, inputs: readonly HTMLInputElement[]): FileChooser {
  let picked: File[] = [];
  let ambiguous: [FileRole, File[]][] = [];
  const refresh = () => {
    picked = inputs.flatMap((i) => [...(i.files ?? [])]);
    ambiguous = (Object.entries(fileCandidates(picked)) as [FileRole, File[]][]).filter(([, list]) => list.length > 1);
    container.replaceChildren(...ambiguous.map(([role, list]) => {
      const label = document.createElement('label');
      label.textContent = `${ROLE_LABELS[role]} (${list.length} found) `;
      const select = document.createElement('select');
      select.name = `choose-${role}`;
      select.append(...list.map((f, i) => new Option(shownName(f), String(i))));
      label.append(select);
      return label;
    }));
    container.hidden = ambiguous.length === 0;
  };
  for (const i of inputs) i.addEventListener('change', refresh);
  refresh();
  return {
    get choices() {
      return ambiguous.map(([r]) => r);
    },
    files() {
      const drop = new Set<File>();
      for (const [role, list] of ambiguous) {
        const sel = container.querySelector<HTMLSelectElement>(`select[name="choose-${role}"]`);
        const keep = list[Number(sel?.value ?? 0)];
        for (const f of list) if (f !== keep) drop.add(f);
      }
      return picked.filter((f) => !drop.has(f));
    },
  };
}
