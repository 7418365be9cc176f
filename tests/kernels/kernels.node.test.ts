import { describe, it } from 'vitest';
import { runCase } from '../../src/selftest/kernel_case.ts';
import { NODE_ADAPTER, NODE_ADAPTER_MISSING, nodeContext } from '../harness/node_gpu.ts';
import { ALL_SUITES } from '../../src/selftest/suites.ts';

// Every kernel case against its CPU reference, on Node's Dawn: once on SwiftShader (vitest project
// `main`) and once on Mesa 25 lavapipe (project `lavapipe`: shader-f16, subgroups of 8).
for (const suite of ALL_SUITES) {
  describe.skipIf(NODE_ADAPTER_MISSING)(`kernel ${suite.name} (node ${NODE_ADAPTER})`, () => {
    for (const c of suite.tests) {
      it(c.name, async () => {
        await runCase(await nodeContext(), c);
      });
    }
  });
}
