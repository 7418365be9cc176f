/**
 * What the conv1d and conv_transpose1d kernels share: shaders/conv_gemm.wgsl (the tiled
 * implicit-GEMM entry point `main`, act and the direct paths' store4, appended to each kernel's WGSL:
 * WGSL has no includes), the tile choice of `main`, and the choice between the tiled and the
 * direct groups = 1 paths.
 */
import gemmSource from '../../shaders/conv_gemm.wgsl?raw';
import { type BindingDecl, Kernel, type ParamsLayout, type Recorder, type Tensor, grid1d } from '../gpu/index.ts';

/**
 * groups = 1 paths: 'tiled' stages x and w slices in workgroup memory (best on GPUs for wide
 * layers); 'direct' reads storage directly, 4×4 outputs per thread (no barriers: faster on CPU
 * fallback adapters such as SwiftShader, whose workgroup barriers are costly, and for narrow
 * layers). 'auto': direct on a fallback adapter or when C_out < 48, tiled otherwise.
 */
export type Conv1dPath = 'auto' | 'tiled' | 'direct';

/** Activation applied to every input value (fused nn.ELU before a SEANet conv). */
export type ConvAct = 'none' | 'elu';

/** A conv shader's own WGSL (bindings, Params, epilogue, GEMM hooks, other entry points) with the shared part appended. */
export function withConvGemm(source: string): string {
  return `${source}\n${gemmSource}`;
}

/** Tile of `main` (TM output rows × TN channels, TK reduction slice) for a given output width. */
export function convTileFor(cOut: number): { TM: number; TN: number; TK: number } {
  if (cOut >= 48) return { TM: 64, TN: 64, TK: 16 };
  if (cOut >= 12) return { TM: 128, TN: 16, TK: 16 };
  return { TM: 256, TN: 4, TK: 8 };
}

/** Whether a groups = 1 conv with `cOut` output channels takes the direct path (see Conv1dPath). */
export function convUsesDirect(rec: Recorder, path: Conv1dPath, cOut: number): boolean {
  const p = path === 'auto' ? (rec.ctx.kernelChoice.convPath ?? 'auto') : path; // GpuContext.kernelChoice may force 'auto' convs
  return p === 'direct' || (p === 'auto' && (rec.ctx.adapter.isFallbackAdapter || cOut < 48));
}

/** A conv family's three entry points over one WGSL source (conv1d.wgsl or conv_transpose1d.wgsl, with conv_gemm.wgsl appended). */
export interface ConvKernels<K extends string = string> {
  /** Tiled implicit GEMM (groups = 1), shaders/conv_gemm.wgsl `main` over the family's hooks. */
  tiled: Kernel<K>;
  /** 4×4 outputs per thread straight from storage (groups = 1), the family's `direct`. */
  direct: Kernel<K>;
  /** One thread per output, any groups, the family's `grouped`. */
  grouped: Kernel<K>;
}

/** The three kernels of a conv family, labelled `name`, `name.direct`, `name.grouped`. */
export function convKernels<K extends string>(name: string, familySource: string, bindings: readonly BindingDecl[], params: ParamsLayout<K>): ConvKernels<K> {
  const source = withConvGemm(familySource);
  return {
    tiled: new Kernel(name, source, bindings, params, 'main'),
    direct: new Kernel(`${name}.direct`, source, bindings, params, 'direct'),
    grouped: new Kernel(`${name}.grouped`, source, bindings, params, 'grouped'),
  };
}

/** One conv dispatch: which entry point runs, and its grid for each. */
export interface ConvDispatch<K extends string> {
  groups: number;
  cOut: number;
  path: Conv1dPath;
  buffers: Tensor[];
  params: Record<K, number>;
  /** Override constants common to the three entry points (ACT, REPLICATE…); `main` also gets TM/TN/TK. */
  constants: Record<string, number>;
  /** Threads of `direct` (one per 4×4 output block). */
  directThreads: number;
  /** Workgroups of `main` for its tile. */
  tiledWorkgroups: (tile: { TM: number; TN: number; TK: number }) => readonly [number, number, number?];
  /** Threads of `grouped` (one per output). */
  groupedThreads: number;
}

/** Records `d` on the entry point its groups, width and path call for (see Conv1dPath). */
export function dispatchConv<K extends string>(rec: Recorder, kernels: ConvKernels<K>, d: ConvDispatch<K>): void {
  const { buffers, params, constants } = d;
  if (d.groups === 1 && convUsesDirect(rec, d.path, d.cOut)) {
    rec.dispatch(kernels.direct, { buffers, params, constants, workgroups: grid1d(d.directThreads, 64) });
  } else if (d.groups === 1) {
    const tile = convTileFor(d.cOut);
    rec.dispatch(kernels.tiled, { buffers, params, constants: { ...tile, ...constants }, workgroups: d.tiledWorkgroups(tile) });
  } else {
    rec.dispatch(kernels.grouped, { buffers, params, constants, workgroups: grid1d(d.groupedThreads, 64) });
  }
}
