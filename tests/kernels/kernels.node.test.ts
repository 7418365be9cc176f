import { describe, it } from 'vitest';
import { runCase } from '../../src/selftest/kernel_case.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { ALL_SUITES } from '../../src/selftest/suites.ts';

// Every kernel case against its CPU reference, on Node's Dawn (SwiftShader without a GPU).
for (const suite of ALL_SUITES) {
  describe(`kernel ${suite.name} (node)`, () => {
    for (const c of suite.tests) {
      it(c.name, async () => {
        await runCase(await nodeContext(), c);
      });
    }
  });
}
