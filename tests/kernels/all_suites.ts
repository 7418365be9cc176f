import type { KernelSuite } from '../harness/kernel_case.ts';
import { attentionSuite } from './attention.cases.ts';
import { conv1dSuite } from './conv1d.cases.ts';
import { elementwiseSuite } from './elementwise.cases.ts';
import { ffnSuite } from './ffn.cases.ts';
import { convTr1dSuite } from './conv_transpose1d.cases.ts';
import { rvqSuite } from './rvq.cases.ts';
import { embeddingSuite } from './embedding.cases.ts';
import { linearSuite } from './linear.cases.ts';
import { normSuite } from './norm.cases.ts';
import { ropeSuite } from './rope.cases.ts';
import { sampleSuite } from './sample.cases.ts';
import { softmaxSuite } from './softmax.cases.ts';
import { unarySuite } from './unary.cases.ts';
import { finiteSuite } from './finite.cases.ts';

/** Every kernel family's cases: run by tests (Node and Chromium) and by `npm run bench`. */
export const ALL_SUITES: KernelSuite[] = [unarySuite, linearSuite, embeddingSuite, sampleSuite, conv1dSuite, convTr1dSuite, rvqSuite, normSuite, elementwiseSuite, softmaxSuite, ropeSuite, attentionSuite, ffnSuite, finiteSuite];
