// Node module hooks so that `import src from './x.wgsl?raw'` (Vite's raw import) also works
// under tsx/Node for the CLI and benchmarks: the module's default export is the file's text.
import { register } from 'node:module';

register('./wgsl_hooks.mjs', import.meta.url);
