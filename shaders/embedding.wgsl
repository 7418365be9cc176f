// embedding: y[m,d] = (accumulate ? y[m,d] : 0) + (0 <= id < V ? table[id, d] : 0),
//            id = ids[ids_offset + m] - row0   (row0: first row of a table bound in row ranges, else 0)
// (nn.Embedding lookup; ScaledEmbedding in moshi/models/lm_utils.py maps its zero_idx = -1 to a
// zero vector. ids are GPU data, so any id < 0 or >= V gives zeros: never an out-of-bounds read.)
// table `w` [V,D] in any format of shaders/weight_formats.wgsl (prepended by src/kernels/embedding.ts:
// f32, packed f16/bf16, q8, MLX affine with `wscale` / `wbias`; a quantized row dequantizes as a
// quantized weight row does) · ids [*] i32 · y [M,D] f32, updated in place (one read_write binding).
// One thread per y element; flat index folded over x/y workgroups (grid1d).
override WG: u32 = 256;

struct Params { rows: u32, d: u32, v: u32, ids_offset: u32, accumulate: u32, row0: u32 }

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
  // The table may be a row range [row0, row0 + v) of a larger one (src/kernels/weight_ranges.ts).
  let id = ids[params.ids_offset + m] - i32(params.row0);
  var v = 0.0;
  if (id >= 0 && u32(id) < params.v) { v = weight_at(u32(id) * D + d, D); }
  if (params.accumulate != 0u) { v += y[i]; }
  y[i] = v;
}
