/**
 * What the conv1d and conv_transpose1d kernels share: shaders/conv_gemm.wgsl (the tiled
 * implicit-GEMM entry point `main`, act and the direct paths' store4, appended to each kernel's WGSL:
 * WGSL has no includes), the tile choice of `main`, and the choice between the tiled and the
 * direct groups = 1 paths.
 */
import gemmSource from '../../shaders/conv_gemm.wgsl?raw';
import type { Recorder } from '../gpu/index.ts';

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
  return path === 'direct' || (path === 'auto' && (rec.ctx.adapter.isFallbackAdapter || cOut < 48));
}
