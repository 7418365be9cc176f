// matvec: y[n] = Σk x[k] · w[n,k] + b[n]     (torch.nn.functional.linear with one input row; the
// memory-bound decode path of Moshi). f32 accumulation.
// x [K] f32 · w [N,K] (PyTorch layout) f32 | f16 | bf16 · b [N] f32 (read only when has_bias = 1;
// without a bias the TS side binds x there) · y [N] f32.
// Vectorized: every load is 16 bytes. w is read as vec4<u32> words: for f16/bf16 one word holds
// 8 packed halves (element 2i in the low 16 bits of u32 i), for f32 4 floats. Requires K % 8 == 0
// (halves) or K % 4 == 0 (f32) so that every row starts on a 16-byte boundary; other K use the
// generic `matvec` entry of shaders/linear.wgsl. kw = vec4 words per row = K/8 (halves) or K/4.
// DTYPE (override): 0 f32, 1 f16, 2 bf16.
// Dispatch: one workgroup of WG threads per ROWS consecutive output rows, ceil(N/ROWS) workgroups
// folded over x/y (grid1d). Threads stride over a row's words (consecutive threads read
// consecutive words: coalesced), each keeps ROWS partial sums, reduced in workgroup memory.
override DTYPE: u32 = 2;
override WG: u32 = 256;   // a power of two
override ROWS: u32 = 4;   // 1 ..= 8

struct Params { n: u32, kw: u32, has_bias: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> red: array<f32, WG * ROWS>;   // [ROWS][WG] partial sums

/** 8 packed halves · 8 floats of x, given as the even (xe) and odd (xo) elements of the chunk. */
fn dot8(v: vec4<u32>, xe: vec4<f32>, xo: vec4<f32>) -> f32 {
  var lo: vec4<f32>;
  var hi: vec4<f32>;
  if (DTYPE == 1u) {
    let a = unpack2x16float(v.x);
    let b2 = unpack2x16float(v.y);
    let c = unpack2x16float(v.z);
    let d = unpack2x16float(v.w);
    lo = vec4<f32>(a.x, b2.x, c.x, d.x);
    hi = vec4<f32>(a.y, b2.y, c.y, d.y);
  } else {
    lo = bitcast<vec4<f32>>(v << vec4<u32>(16u));
    hi = bitcast<vec4<f32>>(v & vec4<u32>(0xffff0000u));
  }
  return dot(lo, xe) + dot(hi, xo);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let N = params.n;
  let kw = params.kw;
  let t = lid.x;
  let row0 = (wid.x + wid.y * nwg.x) * ROWS;
  if (row0 >= N) { return; }   // uniform: whole workgroup past the end of a folded grid
  var acc: array<f32, 8>;
  for (var r = 0u; r < 8u; r++) { acc[r] = 0.0; }
  // Rows past N re-read row N-1 (results discarded) so the loop stays branch-free.
  var base: array<u32, 8>;
  for (var r = 0u; r < ROWS; r++) { base[r] = min(row0 + r, N - 1u) * kw; }
  for (var j = t; j < kw; j += WG) {
    if (DTYPE == 0u) {
      let xv = x[j];
      for (var r = 0u; r < ROWS; r++) {
        acc[r] += dot(bitcast<vec4<f32>>(w[base[r] + j]), xv);
      }
    } else {
      let xa = x[2u * j];
      let xb = x[2u * j + 1u];
      let xe = vec4<f32>(xa.x, xa.z, xb.x, xb.z);
      let xo = vec4<f32>(xa.y, xa.w, xb.y, xb.w);
      for (var r = 0u; r < ROWS; r++) {
        acc[r] += dot8(w[base[r] + j], xe, xo);
      }
    }
  }
  for (var r = 0u; r < ROWS; r++) { red[r * WG + t] = acc[r]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      for (var r = 0u; r < ROWS; r++) { red[r * WG + t] += red[r * WG + t + s]; }
    }
    workgroupBarrier();
  }
  if (t < ROWS && row0 + t < N) {
    var bias = 0.0;
    if (params.has_bias != 0u) { bias = b[row0 + t]; }
    y[row0 + t] = red[t * WG] + bias;
  }
}
