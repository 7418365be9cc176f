// embedding: y[m,d] = (accumulate ? y[m,d] : 0) + Σ_{j < tables} (0 <= id_j < stride ? table[(table0 + j) * stride + id_j, d] : 0),
//            id_j = ids[ids_offset + m * tables + j]
// `tables` = 1, table0 = 0, stride = V: one nn.Embedding lookup. tables > 1: the sum of several
// lookups in tables stacked row-wise ([T * stride, D], table t at rows [t * stride, (t + 1) * stride)),
// added in order j = 0, 1, .. (the f32 sum of the same lookups made one dispatch each:
// LMModel.forward_text's Σ_k emb[k](tok_k)). A table bound in row ranges (src/kernels/weight_ranges.ts)
// binds rows [row0, row0 + v) of the whole; each range adds the rows it holds.
// (nn.Embedding lookup; ScaledEmbedding in moshi/models/lm_utils.py maps its zero_idx = -1 to a
// zero vector. ids are GPU data, so any id < 0 or >= V gives zeros: never an out-of-bounds read.)
// table `w` [V,D] in any format of shaders/weight_formats.wgsl (prepended by src/kernels/embedding.ts:
// f32, packed f16/bf16, q8, MLX affine with `wscale` / `wbias`; a quantized row dequantizes as a
// quantized weight row does) · ids [*] i32 · y [M,D] f32, updated in place (one read_write binding).
// One thread per y element; flat index folded over x/y workgroups (grid1d).
override WG: u32 = 256;

struct Params { rows: u32, d: u32, v: u32, ids_offset: u32, accumulate: u32, row0: u32, tables: u32, table0: u32, stride: u32 }

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> wscale: array<u32>;
@group(0) @binding(2) var<storage, read> wbias: array<u32>;
@group(0) @binding(3) var<storage, read> ids: array<i32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let D = params.d;
  if (i >= params.rows * D) { return; }
  let m = i / D;
  let d = i - m * D;
  var acc = 0.0;
  if (params.accumulate != 0u) { acc = y[i]; }
  for (var j = 0u; j < params.tables; j++) {
    let id = ids[params.ids_offset + m * params.tables + j];
    if (id >= 0 && u32(id) < params.stride) {
      // Row of the whole (stacked) table, then of the bound range [row0, row0 + v).
      let row = (params.table0 + j) * params.stride + u32(id);
      if (row >= params.row0 && row - params.row0 < params.v) { acc += weight_at((row - params.row0) * D + d, D); }
    }
  }
  y[i] = acc;
}
