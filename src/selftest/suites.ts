import type { KernelSuite } from './kernel_case.ts';
import { attentionSuite } from './cases/attention.cases.ts';
import { conv1dSuite } from './cases/conv1d.cases.ts';
import { elementwiseSuite } from './cases/elementwise.cases.ts';
import { ffnSuite } from './cases/ffn.cases.ts';
import { convTr1dSuite } from './cases/conv_transpose1d.cases.ts';
import { rvqSuite } from './cases/rvq.cases.ts';
import { embeddingSuite } from './cases/embedding.cases.ts';
import { linearSuite } from './cases/linear.cases.ts';
import { linearQuantSuite } from './cases/linear_quant.cases.ts';
import { linearFusedSuite } from './cases/linear_fused.cases.ts';
import { normSuite } from './cases/norm.cases.ts';
import { ropeSuite } from './cases/rope.cases.ts';
import { sampleSuite } from './cases/sample.cases.ts';
import { unarySuite } from './cases/unary.cases.ts';
import { finiteSuite } from './cases/finite.cases.ts';
import { peakFmaSuite } from './cases/peak_fma.cases.ts';
import { layerBlockSuite } from './cases/layer_block.cases.ts';

/**
 * Every kernel family's cases: run by the tests (Node: tests/kernels/kernels.node.test.ts,
 * Chromium: tests/browser/kernels.browser.test.ts), by `npm run bench -- kernels` and by the
 * kernel page (/bench.html). The one list: a new case file goes in ./cases/<family>.cases.ts,
 * exports a KernelSuite, and is added here.
 */
export const ALL_SUITES: KernelSuite[] = [unarySuite, linearSuite, linearQuantSuite, linearFusedSuite, embeddingSuite, sampleSuite, conv1dSuite, convTr1dSuite, rvqSuite, normSuite, elementwiseSuite, ropeSuite, attentionSuite, ffnSuite, layerBlockSuite, finiteSuite, peakFmaSuite];
