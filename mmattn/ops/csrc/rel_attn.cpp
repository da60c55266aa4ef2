// Exact 2-D relative attention on CPU, forward and backward, without any (HW)^2 tensor:
//
//   l_ij = qc_i . k_j + qr_i . rel_h[y_j - y_i + H - 1] + qr_i . rel_w[x_j - x_i + W - 1]
//   o_i  = sum_j softmax_j(l_ij) v_j
//
// (the package docstring of mmattn/models/layers/attention/ has the derivation; qc and qr are
// the same tensor unless a logit norm scales the content and relative terms differently).
//
// Queries are taken in blocks from one image row, so that every query of a block sees the
// same key-row offsets: per block, CH = Qr rel_h^T (nq x 2H-1) and CW = Qr rel_w^T
// (nq x 2W-1) are computed once, and the relative logit of (i, j) is CH[i, y_j + c_i] +
// CW[i, x_j + c'_i], a contiguous slice of CW for every key row. Keys are walked in tiles
// of whole image rows (about kKeyTile keys): one GEMM for the content logits, the two table
// terms added in the same pass that takes the row maximum, an online softmax (FlashAttention),
// one GEMM for P V. Backward recomputes P from the saved log-sum-exp, row by row of queries,
// and accumulates dK, dV and the table gradients (dCH, dCW reduce to d rel_h, d rel_w through
// two small GEMMs per block). Forward runs in parallel over (head, query block), backward over
// heads (each thread owns its heads' dK/dV/table gradients: no atomics).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <limits>
#include <vector>

#include "cpu_kernels.h"
#include "small_gemm.h"

namespace mmattn {
namespace {

constexpr int64_t kQueryBlock = 64;  // queries per block (from one image row)
constexpr int64_t kKeyTile = 512;    // keys per tile, rounded down to whole image rows

struct Plan {
  int64_t L, W2, H2, QB, nxb, R;
  Plan(int64_t H, int64_t W) {
    L = H * W;
    W2 = 2 * W - 1;
    H2 = 2 * H - 1;
    QB = std::min<int64_t>(W, kQueryBlock);
    nxb = (W + QB - 1) / QB;
    R = std::max<int64_t>(1, kKeyTile / W);
  }
};

// s (nq x nk, row-major, key rows r0..r0+nr) += CH[i, r + c] + CW[i, x + c']; returns the
// row maxima in mx.
template <typename T>
inline void add_tables(T* s, int64_t ld, int64_t nq, int64_t nr, int64_t W, int64_t H,
                       int64_t y, int64_t x0, int64_t r0, const T* CH, int64_t H2, const T* CW,
                       int64_t W2, T* mx) {
  for (int64_t i = 0; i < nq; ++i) {
    T* si = s + i * ld;
    const T* cw = CW + i * W2 + (W - 1 - (x0 + i));
    const T* ch = CH + i * H2 + (H - 1 - y);
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t rr = 0; rr < nr; ++rr) {
      const T hb = ch[r0 + rr];
      T* sr = si + rr * W;
#pragma omp simd reduction(max : m)
      for (int64_t x = 0; x < W; ++x) {
        const T val = sr[x] + (cw[x] + hb);
        sr[x] = val;
        m = val > m ? val : m;
      }
    }
    mx[i] = m;
  }
}

// The per-tile products of the walk, in two flavours. Both compute, for a block of nq queries
// and a tile of nk keys (row-major, ``ld`` floats per logit row):
//   logits: S = Qc K^T          pv: O += P V          dp: dP = dO V^T
//   dv: dV += P^T dO             dk: dK += dS^T Qc     dq: dQc += dS K
// ``Blas`` calls BLAS for each (any dtype; ld = nk). ``Small`` (float32) uses the
// register-blocked kernels of small_gemm.h on tiles transposed into zero-padded buffers
// (ld = nk rounded up to 16), for heads whose widths make BLAS spend its time packing.
template <typename T>
struct Blas {
  int64_t d, e;
  Blas(int64_t d_, int64_t e_, int64_t /*QB*/, int64_t /*NK*/) : d(d_), e(e_) {}
  static int64_t ld(int64_t nk) { return nk; }
  void block(const T*, const T*, int64_t) {}
  void tile(const T*, const T*, int64_t) {}
  void logits(int64_t nq, int64_t nk, const T* Qc, const T* K, T* S) {
    gemm_rm(false, true, nq, nk, d, T(1), Qc, d, K, d, T(0), S, nk);
  }
  void pv(int64_t nq, int64_t nk, const T* P, const T* V, T* O) {
    gemm_rm(false, false, nq, e, nk, T(1), P, nk, V, e, T(1), O, e);
  }
  void dp(int64_t nq, int64_t nk, const T* dO, const T* V, T* DP) {
    gemm_rm(false, true, nq, nk, e, T(1), dO, e, V, e, T(0), DP, nk);
  }
  void dv(int64_t nq, int64_t nk, const T* P, const T* dO, T* dV) {
    gemm_rm(true, false, nk, e, nq, T(1), P, nk, dO, e, T(1), dV, e);
  }
  void dk(int64_t nq, int64_t nk, const T* DS, const T* Qc, T* dK) {
    gemm_rm(true, false, nk, d, nq, T(1), DS, nk, Qc, d, T(1), dK, d);
  }
  void dq(int64_t nq, int64_t nk, const T* DS, const T* K, T* dQ) {
    gemm_rm(false, false, nq, d, nk, T(1), DS, nk, K, d, T(1), dQ, d);
  }
};

struct Small {
  int64_t d, e;
  std::vector<float> KT, VT, dKT, dVT, QcT, dOT;
  Small(int64_t d_, int64_t e_, int64_t QB, int64_t NK)
      : d(d_), e(e_), KT(d_ * ld(NK)), VT(e_ * ld(NK)), dKT(d_ * ld(NK)), dVT(e_ * ld(NK)),
        QcT(d_ * QB), dOT(e_ * QB) {}
  static int64_t ld(int64_t nk) { return (nk + sg::VL - 1) / sg::VL * sg::VL; }
  // backward: the block's queries and output gradients transposed (the dK, dV products)
  void block(const float* Qc, const float* dO, int64_t nq) {
    sg::transpose_pad(Qc, nq, d, QcT.data(), nq);
    if (dO) sg::transpose_pad(dO, nq, e, dOT.data(), nq);
  }
  // the tile's keys (and values: for narrow values, and the dP product) transposed
  void tile(const float* K, const float* V, int64_t nk) {
    sg::transpose_pad(K, nk, d, KT.data(), ld(nk));
    if (V) sg::transpose_pad(V, nk, e, VT.data(), ld(nk));
  }
  void logits(int64_t nq, int64_t nk, const float* Qc, const float*, float* S) {
    sg::gemm_vn(nq, ld(nk), d, Qc, d, KT.data(), ld(nk), S, ld(nk), false);
  }
  void pv(int64_t nq, int64_t nk, const float* P, const float* V, float* O) {
    if (e % sg::VL == 0)  // wide values: vectorised over e, V read in place
      sg::gemm_vn(nq, e, nk, P, ld(nk), V, e, O, e, true);
    else  // narrow values (AA: 2 per head): dot products over the keys
      sg::gemm_dot(nq, e, ld(nk), P, ld(nk), VT.data(), ld(nk), O, e, true);
  }
  void dp(int64_t nq, int64_t nk, const float* dO, const float*, float* DP) {
    sg::gemm_vn(nq, ld(nk), e, dO, e, VT.data(), ld(nk), DP, ld(nk), false);
  }
  void dv(int64_t nq, int64_t nk, const float* P, const float*, float* dV) {
    sg::gemm_vn(e, ld(nk), nq, dOT.data(), nq, P, ld(nk), dVT.data(), ld(nk), false);
    sg::add_transposed(dV, nk, e, dVT.data(), ld(nk));
  }
  void dk(int64_t nq, int64_t nk, const float* DS, const float*, float* dK) {
    sg::gemm_vn(d, ld(nk), nq, QcT.data(), nq, DS, ld(nk), dKT.data(), ld(nk), false);
    sg::add_transposed(dK, nk, d, dKT.data(), ld(nk));
  }
  void dq(int64_t nq, int64_t nk, const float* DS, const float* K, float* dQ) {
    if (d % sg::VL == 0)
      sg::gemm_vn(nq, d, nk, DS, ld(nk), K, d, dQ, d, true);
    else
      sg::gemm_dot(nq, d, ld(nk), DS, ld(nk), KT.data(), ld(nk), dQ, d, true);
  }
};

template <typename T, typename Products>
void fwd_impl(const T* qc, const T* qr, const T* k, const T* v, const T* rh, const T* rw,
              T* out, T* lse, int64_t G, int64_t H, int64_t W, int64_t d, int64_t e) {
  const Plan p(H, W);
  const int64_t L = p.L, W2 = p.W2, H2 = p.H2, QB = p.QB, nxb = p.nxb, R = p.R;
  at::parallel_for(0, G * H * nxb, 1, [&](int64_t b0, int64_t b1) {
    Products prod(d, e, QB, R * W);
    std::vector<T> S(QB * Products::ld(R * W)), CW(QB * W2), CH(QB * H2), O(QB * e), m(QB),
        l(QB), mx(QB);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t g = b / (H * nxb), rem = b % (H * nxb);
      const int64_t y = rem / nxb, x0 = (rem % nxb) * QB, nq = std::min(QB, W - x0);
      const int64_t i0 = y * W + x0;
      const T* Qc = qc + (g * L + i0) * d;
      const T* Qr = qr + (g * L + i0) * d;
      const T* Kg = k + g * L * d;
      const T* Vg = v + g * L * e;
      gemm_rm(false, true, nq, W2, d, T(1), Qr, d, rw + g * W2 * d, d, T(0), CW.data(), W2);
      gemm_rm(false, true, nq, H2, d, T(1), Qr, d, rh + g * H2 * d, d, T(0), CH.data(), H2);
      std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), T(0));
      std::fill(O.begin(), O.end(), T(0));
      for (int64_t r0 = 0; r0 < H; r0 += R) {
        const int64_t nr = std::min(R, H - r0), nk = nr * W, ld = Products::ld(nk);
        const T* Kt = Kg + r0 * W * d;
        const T* Vt = Vg + r0 * W * e;
        T* s = S.data();
        prod.tile(Kt, e % sg::VL ? Vt : nullptr, nk);  // V^T: narrow values only
        prod.logits(nq, nk, Qc, Kt, s);
        add_tables(s, ld, nq, nr, W, H, y, x0, r0, CH.data(), H2, CW.data(), W2, mx.data());
        for (int64_t i = 0; i < nq; ++i) {
          T* si = s + i * ld;
          const T mnew = std::max(m[i], mx[i]);
          const T alpha = std::exp(m[i] - mnew);
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < nk; ++j) {
            const T pj = exp_softmax(si[j] - mnew);
            si[j] = pj;
            sum += pj;
          }
          for (int64_t j = nk; j < ld; ++j) si[j] = T(0);
          l[i] = l[i] * alpha + sum;
          if (alpha != T(1)) {
            T* oi = O.data() + i * e;
            for (int64_t c = 0; c < e; ++c) oi[c] *= alpha;
          }
          m[i] = mnew;
        }
        prod.pv(nq, nk, s, Vt, O.data());
      }
      T* og = out + (g * L + i0) * e;
      T* lg = lse + g * L + i0;
      for (int64_t i = 0; i < nq; ++i) {
        const T inv = T(1) / l[i];
        for (int64_t c = 0; c < e; ++c) og[i * e + c] = O[i * e + c] * inv;
        lg[i] = m[i] + std::log(l[i]);
      }
    }
  });
}

template <typename T, typename Products>
void bwd_impl(const T* dout, const T* qc, const T* qr, const T* k, const T* v, const T* rh,
              const T* rw, const T* out, const T* lse, T* dqc, T* dqr, T* dk, T* dv, T* drh,
              T* drw, int64_t G, int64_t H, int64_t W, int64_t d, int64_t e) {
  const Plan p(H, W);
  const int64_t L = p.L, W2 = p.W2, H2 = p.H2, QB = p.QB, nxb = p.nxb, R = p.R;
  at::parallel_for(0, G, 1, [&](int64_t g0, int64_t g1) {
    Products prod(d, e, QB, R * W);
    const int64_t LD = Products::ld(R * W);
    std::vector<T> S(QB * LD), DS(QB * LD), CW(QB * W2), CH(QB * H2), dCW(QB * W2),
        dCH(QB * H2), delta(QB), mx(QB);
    for (int64_t g = g0; g < g1; ++g) {
      const T* Kg = k + g * L * d;
      const T* Vg = v + g * L * e;
      const T* rhg = rh + g * H2 * d;
      const T* rwg = rw + g * W2 * d;
      T* dKg = dk + g * L * d;
      T* dVg = dv + g * L * e;
      std::fill(dKg, dKg + L * d, T(0));
      std::fill(dVg, dVg + L * e, T(0));
      std::fill(drh + g * H2 * d, drh + (g + 1) * H2 * d, T(0));
      std::fill(drw + g * W2 * d, drw + (g + 1) * W2 * d, T(0));
      for (int64_t y = 0; y < H; ++y) {
        for (int64_t xb = 0; xb < nxb; ++xb) {
          const int64_t x0 = xb * QB, nq = std::min(QB, W - x0), i0 = y * W + x0;
          const T* Qc = qc + (g * L + i0) * d;
          const T* Qr = qr + (g * L + i0) * d;
          const T* dO = dout + (g * L + i0) * e;
          const T* Oi = out + (g * L + i0) * e;
          const T* lsei = lse + g * L + i0;
          T* dQc = dqc + (g * L + i0) * d;
          for (int64_t i = 0; i < nq; ++i) {
            T acc = 0;
            for (int64_t c = 0; c < e; ++c) acc += dO[i * e + c] * Oi[i * e + c];
            delta[i] = acc;
          }
              prod.block(Qc, dO, nq);
          gemm_rm(false, true, nq, W2, d, T(1), Qr, d, rwg, d, T(0), CW.data(), W2);
          gemm_rm(false, true, nq, H2, d, T(1), Qr, d, rhg, d, T(0), CH.data(), H2);
          std::fill(dCW.begin(), dCW.end(), T(0));
          std::fill(dCH.begin(), dCH.end(), T(0));
          std::fill(dQc, dQc + nq * d, T(0));
          for (int64_t r0 = 0; r0 < H; r0 += R) {
            const int64_t nr = std::min(R, H - r0), nk = nr * W, ld = Products::ld(nk);
            const T* Kt = Kg + r0 * W * d;
            const T* Vt = Vg + r0 * W * e;
            T* s = S.data();
            T* ds = DS.data();
            prod.tile(Kt, Vt, nk);
            prod.logits(nq, nk, Qc, Kt, s);
            add_tables(s, ld, nq, nr, W, H, y, x0, r0, CH.data(), H2, CW.data(), W2,
                       mx.data());
            prod.dp(nq, nk, dO, Vt, ds);
            for (int64_t i = 0; i < nq; ++i) {
              T* si = s + i * ld;
              T* dsi = ds + i * ld;
              const T li = lsei[i], di = delta[i];
#pragma omp simd
              for (int64_t j = 0; j < nk; ++j) {
                const T pj = exp_softmax(si[j] - li);
                si[j] = pj;
                dsi[j] = pj * (dsi[j] - di);
              }
              for (int64_t j = nk; j < ld; ++j) si[j] = dsi[j] = T(0);
              T* cwd = dCW.data() + i * W2 + (W - 1 - (x0 + i));
              T* chd = dCH.data() + i * H2 + (H - 1 - y);
              for (int64_t rr = 0; rr < nr; ++rr) {
                const T* dr = dsi + rr * W;
                T rs = 0;
#pragma omp simd reduction(+ : rs)
                for (int64_t x = 0; x < W; ++x) {
                  cwd[x] += dr[x];
                  rs += dr[x];
                }
                chd[r0 + rr] += rs;
              }
            }
            prod.dv(nq, nk, s, dO, dVg + r0 * W * e);
            prod.dk(nq, nk, ds, Qc, dKg + r0 * W * d);
            prod.dq(nq, nk, ds, Kt, dQc);
          }
          // dQr = dCW rel_w + dCH rel_h (into dQc without a separate qr); d rel_w += dCW^T Qr;
          // d rel_h += dCH^T Qr
          T* dQr = dqr ? dqr + (g * L + i0) * d : dQc;
          gemm_rm(false, false, nq, d, W2, T(1), dCW.data(), W2, rwg, d, T(dqr ? 0 : 1), dQr,
                  d);
          gemm_rm(false, false, nq, d, H2, T(1), dCH.data(), H2, rhg, d, T(1), dQr, d);
          gemm_rm(true, false, W2, d, nq, T(1), dCW.data(), W2, Qr, d, T(1), drw + g * W2 * d, d);
          gemm_rm(true, false, H2, d, nq, T(1), dCH.data(), H2, Qr, d, T(1), drh + g * H2 * d, d);
        }
      }
    }
  });
}

void check_inputs(const char* op, const at::Tensor& qc, const at::Tensor& qr, const at::Tensor& k,
                  const at::Tensor& v, const at::Tensor& rh, const at::Tensor& rw, int64_t H,
                  int64_t W) {
  TORCH_CHECK(qc.dim() == 3 && qr.sizes() == qc.sizes() && k.sizes() == qc.sizes(), op,
              ": qc, qr, k must share one shape (G, H*W, d); got ", qc.sizes(), ", ",
              qr.sizes(), ", ", k.sizes());
  const int64_t G = qc.size(0), L = qc.size(1), d = qc.size(2);
  TORCH_CHECK(H > 0 && W > 0 && H * W == L, op, ": H*W = ", H, "*", W, " does not match ", L,
              " positions");
  TORCH_CHECK(v.dim() == 3 && v.size(0) == G && v.size(1) == L, op, ": v must be (G, H*W, e)",
              "; got ", v.sizes());
  TORCH_CHECK(rh.dim() == 3 && rh.size(0) == G && rh.size(1) == 2 * H - 1 && rh.size(2) == d,
              op, ": rel_h must be (G, 2H-1, d) = (", G, ", ", 2 * H - 1, ", ", d, "); got ",
              rh.sizes());
  TORCH_CHECK(rw.dim() == 3 && rw.size(0) == G && rw.size(1) == 2 * W - 1 && rw.size(2) == d,
              op, ": rel_w must be (G, 2W-1, d) = (", G, ", ", 2 * W - 1, ", ", d, "); got ",
              rw.sizes());
  for (const at::Tensor* t : {&qr, &k, &v, &rh, &rw})
    TORCH_CHECK(t->scalar_type() == qc.scalar_type(), op, ": all inputs must share one dtype");
  TORCH_CHECK(qc.scalar_type() == at::kFloat || qc.scalar_type() == at::kDouble, op,
              ": dtype must be float32 or float64, got ", qc.scalar_type());
}

// Which GEMMs the float32 path uses: gemm = 1: BLAS for every product; 2: the
// register-blocked kernels of small_gemm.h; 0 (auto): the small kernels where a head's q/k or
// v width is not a multiple of 16 (AA: 20 and 2), where the BLAS calls spend most of their time
// packing, and BLAS otherwise (LESA: 16/32), where it was measured faster (docs/benchmarks.md).
inline bool small_gemms(int64_t gemm, int64_t d, int64_t e) {
  TORCH_CHECK(gemm >= 0 && gemm <= 2, "rel_attn: gemm must be 0 (auto), 1 (blas) or 2 (small); got ",
              gemm);
  if (gemm != 0) return gemm == 2;
  return d % sg::VL != 0 || e % sg::VL != 0;
}

// qr is optional: without it the relative term uses qc (no logit norm), and backward
// returns one query gradient (an empty tensor in dqr's place), as plain attention does.
std::tuple<at::Tensor, at::Tensor> rel_attn_fwd(const at::Tensor& qc_,
                                                const c10::optional<at::Tensor>& qr_opt,
                                                const at::Tensor& k_, const at::Tensor& v_,
                                                const at::Tensor& rh_, const at::Tensor& rw_,
                                                int64_t H, int64_t W, int64_t gemm) {
  const bool shared = !qr_opt.has_value() || !qr_opt->defined();
  const at::Tensor& qr_ = shared ? qc_ : *qr_opt;
  check_inputs("rel_attn_fwd", qc_, qr_, k_, v_, rh_, rw_, H, W);
  auto qc = qc_.contiguous(), qr = shared ? qc : qr_.contiguous(), k = k_.contiguous(),
       v = v_.contiguous(), rh = rh_.contiguous(), rw = rw_.contiguous();
  const int64_t G = qc.size(0), L = qc.size(1), d = qc.size(2), e = v.size(2);
  auto out = at::empty({G, L, e}, qc.options());
  auto lse = at::empty({G, L}, qc.options());
  if (qc.scalar_type() == at::kFloat && small_gemms(gemm, d, e)) {
    fwd_impl<float, Small>(qc.data_ptr<float>(), qr.data_ptr<float>(), k.data_ptr<float>(),
                           v.data_ptr<float>(), rh.data_ptr<float>(), rw.data_ptr<float>(),
                           out.data_ptr<float>(), lse.data_ptr<float>(), G, H, W, d, e);
  } else {
    AT_DISPATCH_FLOATING_TYPES(qc.scalar_type(), "rel_attn_fwd", [&] {
      fwd_impl<scalar_t, Blas<scalar_t>>(qc.data_ptr<scalar_t>(), qr.data_ptr<scalar_t>(),
                         k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                         rh.data_ptr<scalar_t>(), rw.data_ptr<scalar_t>(),
                         out.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>(), G, H, W, d, e);
    });
  }
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> rel_attn_bwd(
    const at::Tensor& dout_, const at::Tensor& qc_, const c10::optional<at::Tensor>& qr_opt,
    const at::Tensor& k_, const at::Tensor& v_, const at::Tensor& rh_, const at::Tensor& rw_,
    const at::Tensor& out_, const at::Tensor& lse_, int64_t H, int64_t W, int64_t gemm) {
  const bool shared = !qr_opt.has_value() || !qr_opt->defined();
  const at::Tensor& qr_ = shared ? qc_ : *qr_opt;
  check_inputs("rel_attn_bwd", qc_, qr_, k_, v_, rh_, rw_, H, W);
  TORCH_CHECK(dout_.sizes() == v_.sizes() && out_.sizes() == v_.sizes(),
              "rel_attn_bwd: dout and out must be shaped like v");
  auto qc = qc_.contiguous(), qr = shared ? qc : qr_.contiguous(), k = k_.contiguous(),
       v = v_.contiguous(), rh = rh_.contiguous(), rw = rw_.contiguous(),
       out = out_.contiguous(), lse = lse_.contiguous(),
       dout = dout_.to(qc.scalar_type()).contiguous();
  const int64_t G = qc.size(0), d = qc.size(2), e = v.size(2);
  auto dqc = at::empty_like(qc), dk = at::empty_like(k), dv = at::empty_like(v),
       drh = at::empty_like(rh), drw = at::empty_like(rw);
  auto dqr = shared ? at::empty({0}, qc.options()) : at::empty_like(qr);
  if (qc.scalar_type() == at::kFloat && small_gemms(gemm, d, e)) {
    bwd_impl<float, Small>(dout.data_ptr<float>(), qc.data_ptr<float>(), qr.data_ptr<float>(),
                           k.data_ptr<float>(), v.data_ptr<float>(), rh.data_ptr<float>(),
                           rw.data_ptr<float>(), out.data_ptr<float>(), lse.data_ptr<float>(),
                           dqc.data_ptr<float>(), shared ? nullptr : dqr.data_ptr<float>(),
                           dk.data_ptr<float>(), dv.data_ptr<float>(), drh.data_ptr<float>(),
                           drw.data_ptr<float>(), G, H, W, d, e);
  } else {
    AT_DISPATCH_FLOATING_TYPES(qc.scalar_type(), "rel_attn_bwd", [&] {
      bwd_impl<scalar_t, Blas<scalar_t>>(dout.data_ptr<scalar_t>(), qc.data_ptr<scalar_t>(),
                         qr.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
                         v.data_ptr<scalar_t>(), rh.data_ptr<scalar_t>(),
                         rw.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                         lse.data_ptr<scalar_t>(), dqc.data_ptr<scalar_t>(),
                         shared ? nullptr : dqr.data_ptr<scalar_t>(), dk.data_ptr<scalar_t>(),
                         dv.data_ptr<scalar_t>(), drh.data_ptr<scalar_t>(),
                         drw.data_ptr<scalar_t>(), G, H, W, d, e);
    });
  }
  return {dqc, dqr, dk, dv, drh, drw};
}

}  // namespace
}  // namespace mmattn

TORCH_LIBRARY_FRAGMENT(mmattn, m) {
  m.def("rel_attn_fwd(Tensor qc, Tensor? qr, Tensor k, Tensor v, Tensor rel_h, Tensor rel_w, "
        "int H, int W, int gemm=0) -> (Tensor, Tensor)");
  m.def("rel_attn_bwd(Tensor dout, Tensor qc, Tensor? qr, Tensor k, Tensor v, Tensor rel_h, "
        "Tensor rel_w, Tensor out, Tensor lse, int H, int W, int gemm=0) -> "
        "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmattn, CPU, m) {
  m.impl("rel_attn_fwd", &mmattn::rel_attn_fwd);
  m.impl("rel_attn_bwd", &mmattn::rel_attn_bwd);
}
