// attention: streaming causal multi-head attention over a ring KV cache (moshi/modules/transformer.py
// `StreamingMultiheadAttention.forward` + `RingKVCache.complete`), passes chosen by OP:
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
//   2 partial (T = 1, long caches: flash-decoding): the n_slots slots are cut into n_split ranges of
//            split_len; workgroup (h, s) runs the attend loop over range s only and writes its
//            running max m, sum l and unnormalised accumulator acc[Dh] to part[(h·n_split + s)·(Dh+2)].
//   WRITE = 1 (with ops 1 and 2, T = 1 only): the attend pass also does op 0's write for its head,
//            first, so no separate write dispatch runs: workgroup h (op 1), or the workgroup (h, s)
//            whose slot range holds the new step's slot (op 2), stores k and v of step 0 to slot
//            offset % cap, then storageBarrier() makes them visible to its own threads.
//   WRITE = 2 (op 1, T > 1): workgroup (t, h) writes row t of head h to slot (offset + t) % cap and
//            reads the keys and values of this call's rows (pos_k ≥ offset) from qkv instead of the
//            cache (rounded to f16 first with KV_HALF, as the cache would hold them), so no workgroup
//            reads a slot another one writes: the same result as op 0 then op 1.
//   3 combine: workgroup h merges its n_split partials: M = max m_s,
//            out[h·Dh + d] = Σ_s acc_s[d]·exp(m_s − M) / Σ_s l_s·exp(m_s − M)
//            (the same softmax as the single pass, summed in another order). Dispatch [H].
// qkv: [T, 3D] f32 (rows q | k | v, heads (h d)); out: [T, D] f32;
// kc, vc: [H, cap, Dh] f32 words (KV_HALF = 0), or [H, cap, Dh_pad] f16 packed two per u32 word
// (KV_HALF = 1, Dh_pad = Dh rounded up to even; element d of a row in word d/2, low half first;
// op 0 then runs one thread per word);
// part: [H, max splits, Dh + 2] f32 scratch (ops 2 and 3; bound but unused otherwise).
override OP: u32 = 0;
override KV_HALF: u32 = 0;
override WRITE: u32 = 0;
override WG: u32 = 64;
const MAX_DH: u32 = 256u;

struct Params { t_len: u32, heads: u32, head_dim: u32, cap: u32, offset: u32, n_slots: u32, context: u32, scale: f32, n_split: u32, split_len: u32 }

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> kc: array<u32>;
@group(0) @binding(2) var<storage, read_write> vc: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> qs: array<f32, MAX_DH>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> red: array<f32, WG>;
/** WRITE = 2: per slot of the current tile, its row t in qkv when it is one of this call's rows, else NOT_IN_CALL. */
var<workgroup> vsrc: array<u32, WG>;
const NOT_IN_CALL: u32 = 0xffffffffu;

const LOWEST: f32 = -3.402823e38;

/** Online-softmax state of one thread: output dims lid + WG·r for r < 4 in acc.{x,y,z,w}. */
struct Attend { m: f32, l: f32, acc: vec4<f32> }

/** Elements per cached row: Dh (f32) or Dh rounded up to even (packed halves). */
fn row_len() -> u32 {
  if (KV_HALF == 1u) { return (params.head_dim + 1u) & ~1u; }
  return params.head_dim;
}

/** Element e (flat over [H, cap, row_len]) of the key / value cache as f32. */
fn k_at(e: u32) -> f32 {
  if (KV_HALF == 1u) { return unpack2x16float(kc[e >> 1u])[e & 1u]; }
  return bitcast<f32>(kc[e]);
}
fn v_at(e: u32) -> f32 {
  if (KV_HALF == 1u) { return unpack2x16float(vc[e >> 1u])[e & 1u]; }
  return bitcast<f32>(vc[e]);
}

/** A key or value element of qkv as the cache stores it: itself (f32) or rounded to f16 (KV_HALF). */
fn as_cached(x: f32) -> f32 {
  if (KV_HALF == 1u) { return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x; }
  return x;
}

/**
 * Σ_{jj < cnt} ps[jj] · v[at + jj·row]: output dim `dim` of head h over a tile of slots (with
 * WRITE = 2, this call's rows read from qkv, see vsrc).
 */
fn weighted_v(at: u32, cnt: u32, h: u32, dim: u32) -> f32 {
  let row = row_len();
  var a = 0.0;
  if (WRITE == 2u) {
    let d_model = params.heads * params.head_dim;
    for (var jj = 0u; jj < cnt; jj++) {
      let r = vsrc[jj];
      var v: f32;
      if (r == NOT_IN_CALL) { v = v_at(at + jj * row); } else { v = as_cached(qkv[r * 3u * d_model + 2u * d_model + h * params.head_dim + dim]); }
      a += ps[jj] * v;
    }
    return a;
  }
  for (var jj = 0u; jj < cnt; jj++) { a += ps[jj] * v_at(at + jj * row); }
  return a;
}

/**
 * Query t of head h (q already scaled in `qs`) against ring slots [lo, hi), tiles of WG slots.
 * Must be called in workgroup-uniform control flow (lo, hi uniform).
 */
fn attend_range(t: u32, h: u32, lo: u32, hi: u32, lid: u32) -> Attend {
  let dh = params.head_dim;
  let cap = params.cap;
  let last = i32(params.offset + params.t_len - 1u);
  let e = i32((params.offset + params.t_len - 1u) % cap);
  let pos_q = i32(params.offset + t);
  var m = LOWEST;
  var l = 0.0;
  var acc = vec4<f32>(0.0);
  for (var base = lo; base < hi; base += WG) {
    let j = base + lid;
    var valid = false;
    var s = LOWEST;
    if (j < hi) {
      let delta = i32(j) - e;
      let pos_k = select(last + delta - i32(cap), last + delta, delta <= 0);
      valid = pos_k >= 0 && pos_k <= pos_q && u32(pos_q - pos_k) < params.context;
      let in_call = WRITE == 2u && pos_k >= i32(params.offset);
      if (WRITE == 2u) { vsrc[lid] = select(NOT_IN_CALL, u32(pos_k) - params.offset, in_call); }
      if (valid) {
        var dot = 0.0;
        if (in_call) {
          let d_model = params.heads * dh;
          let kq = (u32(pos_k) - params.offset) * 3u * d_model + d_model + h * dh;
          for (var d = 0u; d < dh; d++) { dot += qs[d] * as_cached(qkv[kq + d]); }
        } else {
          let kb = (h * cap + j) * row_len();
          for (var d = 0u; d < dh; d++) { dot += qs[d] * k_at(kb + d); }
        }
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
    let cnt = min(WG, hi - base);
    var tile_sum = 0.0;
    for (var jj = 0u; jj < cnt; jj++) { tile_sum += ps[jj]; }
    l = l * alpha + tile_sum;
    // acc dims d = lid, lid + WG, lid + 2·WG, lid + 3·WG (Dh ≤ 4·WG), one register each.
    // Threads without an output dim skip the loops (most of them when Dh < WG).
    acc = acc * alpha;
    let vb = (h * cap + base) * row_len() + lid;
    if (lid < dh) { acc.x += weighted_v(vb, cnt, h, lid); }
    if (lid + WG < dh) { acc.y += weighted_v(vb + WG, cnt, h, lid + WG); }
    if (lid + 2u * WG < dh) { acc.z += weighted_v(vb + 2u * WG, cnt, h, lid + 2u * WG); }
    if (lid + 3u * WG < dh) { acc.w += weighted_v(vb + 3u * WG, cnt, h, lid + 3u * WG); }
    m = m_new;
    workgroupBarrier();
  }
  return Attend(m, l, acc);
}

/**
 * Op 0's write of row (t, head h) by the WG threads of one workgroup, then (WRITE = 1)
 * storageBarrier(): its own threads read the slot back.
 */
fn write_head(t: u32, h: u32, lid: u32) {
  let dh = params.head_dim;
  let d_model = params.heads * dh;
  let slot = (params.offset + t) % params.cap;
  let kq = t * 3u * d_model + d_model + h * dh;
  let vq = kq + d_model;
  if (KV_HALF == 1u) {
    let wpr = row_len() / 2u;
    for (var w = lid; w < wpr; w += WG) {
      let d0 = 2u * w;
      let dst = (h * params.cap + slot) * wpr + w;
      let has1 = d0 + 1u < dh;
      kc[dst] = pack2x16float(vec2<f32>(qkv[kq + d0], select(0.0, qkv[kq + min(d0 + 1u, dh - 1u)], has1)));
      vc[dst] = pack2x16float(vec2<f32>(qkv[vq + d0], select(0.0, qkv[vq + min(d0 + 1u, dh - 1u)], has1)));
    }
  } else {
    for (var d = lid; d < dh; d += WG) {
      let dst = (h * params.cap + slot) * dh + d;
      kc[dst] = bitcast<u32>(qkv[kq + d]);
      vc[dst] = bitcast<u32>(qkv[vq + d]);
    }
  }
  if (WRITE == 1u) { storageBarrier(); }
}

/** Loads query t of head h, scaled, into `qs`. */
fn load_q(t: u32, h: u32, lid: u32) {
  let dh = params.head_dim;
  let d_model = params.heads * dh;
  for (var d = lid; d < dh; d += WG) { qs[d] = qkv[t * 3u * d_model + h * dh + d] * params.scale; }
  workgroupBarrier();
}

fn store4(base: u32, lid: u32, v: vec4<f32>) {
  let dh = params.head_dim;
  if (lid < dh) { out[base + lid] = v.x; }
  if (lid + WG < dh) { out[base + lid + WG] = v.y; }
  if (lid + 2u * WG < dh) { out[base + lid + 2u * WG] = v.z; }
  if (lid + 3u * WG < dh) { out[base + lid + 3u * WG] = v.w; }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let dh = params.head_dim;
  let h_n = params.heads;
  let d_model = h_n * dh;
  let cap = params.cap;
  let g = wid.x + wid.y * nwg.x;     // uniform per workgroup
  switch OP {
    case 0u: {
      let i = gid.x + gid.y * nwg.x * WG;
      if (KV_HALF == 1u) {
        // One thread per packed word: elements 2w, 2w + 1 of row (t, h); a padding element is 0.
        let wpr = row_len() / 2u;          // words per row
        if (i >= params.t_len * h_n * wpr) { return; }
        let t = i / (h_n * wpr);
        let rem = i - t * h_n * wpr;
        let h = rem / wpr;
        let w = rem - h * wpr;
        let d0 = 2u * w;
        let slot = (params.offset + t) % cap;
        let dst = (h * cap + slot) * wpr + w;
        let kq = t * 3u * d_model + d_model + h * dh;
        let vq = kq + d_model;
        let has1 = d0 + 1u < dh;
        kc[dst] = pack2x16float(vec2<f32>(qkv[kq + d0], select(0.0, qkv[kq + min(d0 + 1u, dh - 1u)], has1)));
        vc[dst] = pack2x16float(vec2<f32>(qkv[vq + d0], select(0.0, qkv[vq + min(d0 + 1u, dh - 1u)], has1)));
        return;
      }
      if (i >= params.t_len * d_model) { return; }
      let t = i / d_model;
      let c = i - t * d_model;           // column h·Dh + d
      let h = c / dh;
      let d = c - h * dh;
      let slot = (params.offset + t) % cap;
      let dst = (h * cap + slot) * dh + d;
      kc[dst] = bitcast<u32>(qkv[t * 3u * d_model + d_model + c]);
      vc[dst] = bitcast<u32>(qkv[t * 3u * d_model + 2u * d_model + c]);
    }
    case 2u: {
      // Workgroup (h, s): partial over slots [s·split_len, min(n_slots, (s+1)·split_len)), query 0.
      let live = g < h_n * params.n_split;
      let gg = min(g, h_n * params.n_split - 1u);
      let h = gg / params.n_split;
      let sp = gg - h * params.n_split;
      load_q(0u, h, lid);
      let lo = min(sp * params.split_len, params.n_slots);
      let hi = min(lo + params.split_len, params.n_slots);
      let slot = params.offset % params.cap;
      if (WRITE == 1u && live && slot >= lo && slot < hi) { write_head(0u, h, lid); }
      let r = attend_range(0u, h, lo, hi, lid);
      if (live) {
        let pb = gg * (dh + 2u);
        if (lid == 0u) {
          part[pb] = r.m;
          part[pb + 1u] = r.l;
        }
        let ab = pb + 2u;
        if (lid < dh) { part[ab + lid] = r.acc.x; }
        if (lid + WG < dh) { part[ab + lid + WG] = r.acc.y; }
        if (lid + 2u * WG < dh) { part[ab + lid + 2u * WG] = r.acc.z; }
        if (lid + 3u * WG < dh) { part[ab + lid + 3u * WG] = r.acc.w; }
      }
    }
    case 3u: {
      // Workgroup h: merge the n_split partials of head h into out[0, h·Dh ..].
      if (g >= h_n) { return; }
      let h = g;
      var mx = LOWEST;
      for (var sp = 0u; sp < params.n_split; sp++) { mx = max(mx, part[(h * params.n_split + sp) * (dh + 2u)]); }
      var l = 0.0;
      for (var sp = 0u; sp < params.n_split; sp++) {
        let pb = (h * params.n_split + sp) * (dh + 2u);
        l += part[pb + 1u] * exp(part[pb] - mx);
      }
      for (var d = lid; d < dh; d += WG) {
        var a = 0.0;
        for (var sp = 0u; sp < params.n_split; sp++) {
          let pb = (h * params.n_split + sp) * (dh + 2u);
          a += part[pb + 2u + d] * exp(part[pb] - mx);
        }
        out[h * dh + d] = a / l;
      }
    }
    default: {
      let live = g < params.t_len * h_n;
      let gg = min(g, params.t_len * h_n - 1u);
      let t = gg / h_n;
      let h = gg - t * h_n;
      if (WRITE != 0u && live) { write_head(t, h, lid); }
      load_q(t, h, lid);
      let r = attend_range(t, h, 0u, params.n_slots, lid);
      if (live) { store4(t * d_model + h * dh, lid, r.acc / r.l); }
    }
  }
}
