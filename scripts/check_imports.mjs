#!/usr/bin/env node
// Import-direction check: every import in src/, workers/, bench/ and tests/ must point down the
// layers below (or stay inside its own layer), and no files may import each other in a circle.
// Run by `npm test`; `node scripts/check_imports.mjs [--root DIR]` checks another tree (the unit
// test builds one with a deliberate upward import). Exit 0: clean; exit 1: each broken import as
// `file → import  [rule]`. docs/ARCHITECTURE.md states the same rules in prose.
//
// Imports are read with the TypeScript parser (already a devDependency): static `import` /
// `export … from` (type-only ones too: a type import is still a dependency of the design),
// dynamic `import('…')`, and `new URL('…', import.meta.url)` (how a page starts a Worker).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layers, bottom first, and what each may import besides itself. A file belongs to the first
 * layer whose path prefix it starts with. Inside src/: gpu at the bottom; kernels on gpu;
 * modules / quantization / conditioners on kernels; models on those; engine on models; ui and
 * cli on top. weights, text, protocol and audio are lower leaves. selftest (the kernel case
 * lists and runner the kernel page ships) sits on kernels. Outside src/: workers on src,
 * bench and tests on src (tests also on workers and bench; bench on tests/harness for its
 * browser driver); src and workers never import tests/ or bench/.
 */
export const LAYERS = [
  ['shaders', 'shaders/', []],
  ['gpu', 'src/gpu/', []],
  ['protocol', 'src/protocol/', []],
  ['text', 'src/text/', []],
  ['audio', 'src/audio/', ['protocol']],
  ['weights', 'src/weights/', ['gpu']],
  ['kernels', 'src/kernels/', ['gpu', 'shaders']],
  ['modules', 'src/modules/', ['gpu', 'kernels', 'weights']],
  ['quantization', 'src/quantization/', ['gpu', 'kernels', 'weights', 'modules']],
  ['conditioners', 'src/conditioners/', ['gpu', 'kernels', 'weights', 'modules']],
  ['models', 'src/models/', ['gpu', 'kernels', 'weights', 'modules', 'quantization', 'conditioners', 'text']],
  ['selftest', 'src/selftest/', ['gpu', 'kernels']],
  ['engine', 'src/engine/', ['gpu', 'kernels', 'weights', 'modules', 'quantization', 'conditioners', 'models', 'text', 'audio', 'protocol']],
  ['cli', 'src/cli/', ['gpu', 'kernels', 'weights', 'modules', 'quantization', 'conditioners', 'models', 'text', 'audio', 'protocol', 'engine']],
  ['ui', 'src/ui/', ['gpu', 'weights', 'text', 'audio', 'protocol', 'models', 'engine', 'selftest', 'workers:url']],
  ['workers', 'workers/', ['gpu', 'kernels', 'weights', 'modules', 'quantization', 'conditioners', 'models', 'text', 'audio', 'protocol', 'engine', 'selftest']],
  ['bench', 'bench/', ['src', 'tests:harness']],
  ['tests', 'tests/', ['src', 'workers', 'bench', 'shaders']],
];

/** Groups a rule may name: every src/ layer; tests/harness only. */
const GROUPS = {
  src: LAYERS.filter(([, p]) => p.startsWith('src/')).map(([n]) => n),
  'tests:harness': ['tests:harness'],
};

/** Packages that only tests and benchmarks may use: never bundled into the app or the CLI. */
export const DEV_ONLY_PACKAGES = ['vitest', 'playwright-core', 'vite', 'onnxruntime-web'];

/**
 * Explicit exceptions, each `[from file, imported file, kinds allowed, why]` (kinds: 'type' for
 * `import type` only, 'any'). Keep this short; every entry says why it is there.
 */
export const ALLOWANCES = [
  // GpuContext.record() constructs Recorders, and Recorder.ctx hands kernels the full context
  // that made it (rec.ctx.tensor(), rec.ctx.adapter): the back-reference is a type, erased at
  // run time, so recorder.ts stays a file of its own without a runtime cycle.
  ['src/gpu/recorder.ts', 'src/gpu/context.ts', 'type', 'Recorder.ctx is the GpuContext that created it'],
];

/** Files the check reads, relative to the root, with '/' separators. */
function listFiles(root) {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(join(root, dir))) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      const rel = dir ? `${dir}/${name}` : name;
      const st = statSync(join(root, rel));
      if (st.isDirectory()) walk(rel);
      else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const top of ['src', 'workers', 'bench', 'tests']) if (existsSync(join(root, top))) walk(top);
  return out.sort();
}

/** The layer of a root-relative path ('tests:harness' for tests/harness/), or null. */
export function layerOf(rel) {
  if (rel.startsWith('tests/harness/')) return 'tests:harness';
  for (const [name, prefix] of LAYERS) if (rel.startsWith(prefix)) return name;
  return null;
}

function allowedFor(layer) {
  const name = layer === 'tests:harness' ? 'tests' : layer;
  const row = LAYERS.find(([n]) => n === name);
  const set = new Set([name]);
  for (const a of row?.[2] ?? []) for (const x of GROUPS[a] ?? [a]) set.add(x);
  if (name === 'tests') set.add('tests:harness');
  return set;
}

/** Every module reference in `text`: { spec, kind: 'import' | 'type' | 'dynamic' | 'url', line }. */
export function referencesOf(fileName, text) {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const refs = [];
  const add = (node, spec, kind) => refs.push({ spec, kind, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly : node.isTypeOnly;
      add(node, node.moduleSpecifier.text, typeOnly ? 'type' : 'import');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      add(node, node.arguments[0].text, 'dynamic');
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'URL' && node.arguments?.length === 2
      && ts.isStringLiteralLike(node.arguments[0]) && node.arguments[1].getText(sf) === 'import.meta.url') {
      add(node, node.arguments[0].text, 'url');
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

/**
 * Checks the tree at `root`. @returns { violations: [{ from, spec, to, line, rule }], files }
 * where `to` is the root-relative target (query string dropped) or the package name.
 */
export function checkImports(root) {
  const files = listFiles(root);
  const violations = [];
  const graph = new Map(files.map((f) => [f, []]));
  const allowance = (from, to, kind) => ALLOWANCES.some(([f, t, k]) => f === from && t === to && (k === 'any' || k === kind));
  for (const from of files) {
    const layer = layerOf(from);
    const allowed = allowedFor(layer);
    for (const { spec, kind, line } of referencesOf(from, readFileSync(join(root, from), 'utf8'))) {
      if (!spec.startsWith('.')) {
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if ((from.startsWith('src/') || from.startsWith('workers/')) && DEV_ONLY_PACKAGES.includes(pkg)) {
          violations.push({ from, spec, to: pkg, line, rule: `${layer} must not use the dev-only package ${pkg}` });
        }
        continue;
      }
      const to = relative(root, resolve(root, dirname(from), spec.split('?')[0])).split(sep).join('/');
      if (graph.has(to) && kind !== 'url' && !allowance(from, to, kind)) graph.get(from).push({ to, spec, line });
      const target = layerOf(to);
      if (target === null) continue; // e.g. ../shared/fixtures, public/
      if (allowance(from, to, kind)) continue;
      if (target === 'workers' && layer === 'ui' && kind === 'url' || target === 'workers' && layer === 'ui' && /\?(worker&)?url$/.test(spec)) continue;
      if (allowed.has(target)) continue;
      let rule = `${layer} may import ${[...allowed].filter((x) => x !== layer).join(', ') || 'nothing'} (and itself), not ${target}`;
      if (target === 'workers' && layer === 'ui') rule = 'ui may reference workers/ entry points only as URLs (new URL(…, import.meta.url) or ?worker&url), never import their code or types';
      if ((from.startsWith('src/') || from.startsWith('workers/')) && (target === 'tests' || target === 'tests:harness' || target === 'bench')) rule = 'src/ and workers/ must never import tests/ or bench/ (the app would ship test code)';
      violations.push({ from, spec, to, line, rule });
    }
  }
  // Files importing each other in a circle (Tarjan's strongly connected components).
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const sccs = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const { to } of graph.get(v)) {
      if (!idx.has(to)) {
        strong(to);
        low.set(v, Math.min(low.get(v), low.get(to)));
      } else if (on.has(to)) low.set(v, Math.min(low.get(v), idx.get(to)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) sccs.push(comp);
    }
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  for (const comp of sccs) {
    const inComp = new Set(comp);
    for (const from of comp.sort()) {
      for (const { to, spec, line } of graph.get(from)) {
        if (inComp.has(to)) violations.push({ from, spec, to, line, rule: `import cycle: ${comp.join(' ↔ ')}` });
      }
    }
  }
  return { violations, files };
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const i = process.argv.indexOf('--root');
  const root = resolve(i >= 0 ? process.argv[i + 1] : join(dirname(fileURLToPath(import.meta.url)), '..'));
  const { violations, files } = checkImports(root);
  if (violations.length) {
    console.error(`check_imports: ${violations.length} import(s) break the layer rules (docs/ARCHITECTURE.md):`);
    for (const v of violations) console.error(`  ${v.from}:${v.line} → ${v.spec}  [${v.rule}]`);
    process.exit(1);
  }
  console.log(`check_imports: ${files.length} files, every import points down the layers`);
}
