export * from './context.ts';
export * from './dtype.ts';
export * from './errors.ts';
export * from './kernel.ts';
export * from './params.ts';
export * from './profiler.ts';
export * from './recorder.ts';
export * from './tensor.ts';
