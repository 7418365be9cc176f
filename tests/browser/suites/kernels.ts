import { ALL_SUITES } from '../../../src/selftest/suites.ts';
import { runCase } from '../../../src/selftest/kernel_case.ts';
import type { BrowserSuite } from '../protocol.ts';

/** The same kernel cases as the Node tests, in a module Worker on Chromium's WebGPU. */
const run: BrowserSuite = async (ctx, env) => {
  for (const suite of ALL_SUITES) {
    for (const c of suite.tests) await env.test(`${suite.name}: ${c.name}`, () => runCase(ctx, c));
  }
};
export default run;
