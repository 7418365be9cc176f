import type { KernelSuite } from '../harness/kernel_case.ts';
import { unarySuite } from './unary.cases.ts';

/** Every kernel family's cases: run by tests (Node and Chromium) and by `npm run bench`. */
export const ALL_SUITES: KernelSuite[] = [unarySuite];
