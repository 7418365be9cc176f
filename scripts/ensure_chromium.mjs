#!/usr/bin/env node
// Makes sure the system Chromium (with its SwiftShader Vulkan driver) and the Vulkan loader that
// Node's Dawn needs are present. Installs Debian's packages when running as root with apt-get;
// otherwise stops with what to install. Never downloads a browser of its own.
// --optional: only warn (used by `npm start`, which needs no Chromium).
// Then (without --optional) Mesa 25 lavapipe, the tests' second Node adapter: ensure_lavapipe.mjs
// unpacks it from bookworm-backports into .cache/lavapipe/. If it cannot, the lavapipe test pass is
// skipped with the reason, except under CI=true, where that is an error.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureLavapipe } from './ensure_lavapipe.mjs';

const optional = process.argv.includes('--optional');
const chromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const icd = '/usr/lib/chromium/vk_swiftshader_icd.json';
const hasLoader = () => {
  try {
    return execSync('ldconfig -p', { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    return false;
  }
};
const missing = () => {
  const m = [];
  if (!existsSync(chromium) || (!process.env.CHROMIUM_PATH && !existsSync(icd))) m.push('chromium');
  if (!hasLoader()) m.push('libvulkan1');
  return m;
};

function lavapipe() {
  if (optional) return;
  const r = ensureLavapipe();
  if (r.icd) return;
  console.error(`[solacelive] Mesa 25 lavapipe unavailable: ${r.reason}`);
  if (process.env.CI === 'true' || process.env.CI === '1') {
    console.error('[solacelive] CI runs the kernel suites and goldens on lavapipe too: failing.');
    process.exit(1);
  }
  console.error('[solacelive] the tests\' lavapipe pass (vitest project `lavapipe`) will be skipped.');
}

let need = missing();
if (need.length === 0) {
  lavapipe();
  process.exit(0);
}
if (optional) {
  console.warn(`[solacelive] note: ${need.join(', ')} not installed; Node-side WebGPU and browser tests need them (apt-get install ${need.join(' ')}).`);
  process.exit(0);
}
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');
if (isRoot && hasApt) {
  console.log(`[solacelive] installing Debian packages: ${need.join(' ')} (and espeak-ng, sox for test audio)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execSync('apt-get update -qq', { stdio: 'inherit', env });
  execSync(`apt-get install -y -qq --no-install-recommends ${need.join(' ')} espeak-ng sox`, { stdio: 'inherit', env });
  need = missing();
}
if (need.length) {
  console.error(
    `[solacelive] missing: ${need.join(', ')}.\n` +
      `Install Debian's packages as root: apt-get install ${need.join(' ')}\n` +
      `(or point CHROMIUM_PATH at a Chromium binary). Tests never download a browser.`,
  );
  process.exit(1);
}
lavapipe();
