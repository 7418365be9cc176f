// attention: streaming causal multi-head attention over a ring KV cache (moshi/modules/transformer.py
// `StreamingMultiheadAttention.forward` + `RingKVCache.complete`), two passes chosen by OP:
//   0 write: k and v of the T new steps go to ring slots (offset + t) % cap:
//            kc[h, slot, :] = qkv[t, D + h·Dh : D + (h+1)·Dh],  vc[h, slot, :] = qkv[t, 2D + h·Dh : ...]
//            (q and k already rotated by RoPE). One thread per (t, h, d); needs T ≤ cap.
//   1 attend: for query t of head h (absolute position pos_q = offset + t), every ring slot j < n_slots
//            holds the absolute position the official cache reports after the write:
//              last = offset + T - 1, e = last % cap, δ = j - e,  pos_k = δ ≤ 0 ? last + δ : last + δ - cap
//            (slots ≥ offset + T were never written and are skipped: n_slots = min(offset + T, cap)).
//            Key j is attended iff pos_k ≥ 0, pos_k ≤ pos_q and pos_q - pos_k < context (exactly the
//            official mask, also once the ring wraps). out[t, h·Dh + d] = Σ_j p_j · vc[h, j, d] with
//            p = softmax_j((q · scale) · k_j), scale = 1/sqrt(Dh). Single pass, online softmax over
//            tiles of WG slots: one workgroup per (t, h) (folded over x/y), thread i scores slot
//            tile + i, then accumulates output dims i, i + WG, ... (Dh ≤ 4·WG).
// qkv: [T, 3D] f32 (rows q | k | v, heads (h d)); kc, vc: [H, cap, Dh] f32; out: [T, D] f32.
override OP: u32 = 0;
override WG: u32 = 64;
const MAX_DH: u32 = 256u;

struct Params { t_len: u32, heads: u32, head_dim: u32, cap: u32, offset: u32, n_slots: u32, context: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> kc: array<f32>;
@group(0) @binding(2) var<storage, read_write> vc: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> qs: array<f32, MAX_DH>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> red: array<f32, WG>;

const LOWEST: f32 = -3.402823e38;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let dh = params.head_dim;
  let h_n = params.heads;
  let d_model = h_n * dh;
  let cap = params.cap;
  switch OP {
    case 0u: {
      let i = gid.x + gid.y * nwg.x * WG;
      if (i >= params.t_len * d_model) { return; }
      let t = i / d_model;
      let c = i - t * d_model;           // column h·Dh + d
      let h = c / dh;
      let d = c - h * dh;
      let slot = (params.offset + t) % cap;
      let dst = (h * cap + slot) * dh + d;
      kc[dst] = qkv[t * 3u * d_model + d_model + c];
      vc[dst] = qkv[t * 3u * d_model + 2u * d_model + c];
    }
    default: {
      let g = wid.x + wid.y * nwg.x;     // uniform per workgroup
      let live = g < params.t_len * h_n;
      let gg = min(g, params.t_len * h_n - 1u);
      let t = gg / h_n;
      let h = gg - t * h_n;
      for (var d = lid; d < dh; d += WG) { qs[d] = qkv[t * 3u * d_model + h * dh + d] * params.scale; }
      workgroupBarrier();

      let last = i32(params.offset + params.t_len - 1u);
      let e = i32((params.offset + params.t_len - 1u) % cap);
      let pos_q = i32(params.offset + t);
      let n_slots = params.n_slots;
      var m = LOWEST;
      var l = 0.0;
      var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
      for (var base = 0u; base < n_slots; base += WG) {
        let j = base + lid;
        var valid = false;
        var s = LOWEST;
        if (j < n_slots) {
          let delta = i32(j) - e;
          let pos_k = select(last + delta - i32(cap), last + delta, delta <= 0);
          valid = pos_k >= 0 && pos_k <= pos_q && u32(pos_q - pos_k) < params.context;
          if (valid) {
            let kb = (h * cap + j) * dh;
            var dot = 0.0;
            for (var d = 0u; d < dh; d++) { dot += qs[d] * kc[kb + d]; }
            s = dot;
          }
        }
        red[lid] = s;
        workgroupBarrier();
        for (var st = WG / 2u; st > 0u; st = st / 2u) {
          if (lid < st) { red[lid] = max(red[lid], red[lid + st]); }
          workgroupBarrier();
        }
        let m_new = max(m, red[0]);
        let alpha = exp(m - m_new);
        ps[lid] = select(0.0, exp(s - m_new), valid);
        workgroupBarrier();
        let cnt = min(WG, n_slots - base);
        var tile_sum = 0.0;
        for (var jj = 0u; jj < cnt; jj++) { tile_sum += ps[jj]; }
        l = l * alpha + tile_sum;
        for (var r = 0u; r < 4u; r++) {
          let d = lid + r * WG;
          if (d < dh) {
            var a = acc[r] * alpha;
            for (var jj = 0u; jj < cnt; jj++) { a += ps[jj] * vc[(h * cap + base + jj) * dh + d]; }
            acc[r] = a;
          }
        }
        m = m_new;
        workgroupBarrier();
      }
      if (live) {
        for (var r = 0u; r < 4u; r++) {
          let d = lid + r * WG;
          if (d < dh) { out[t * d_model + h * dh + d] = acc[r] / l; }
        }
      }
    }
  }
}
