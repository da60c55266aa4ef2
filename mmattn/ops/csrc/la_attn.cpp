// LA-layer attention with query-anchored sampling offsets, fused, on CPU (forward, backward).
//
// The default reading of the LA-layer (offset_mode='sample', offset_anchor='query',
// value_mode='inside_softmax'): query t = (y, x) with its offset (dx, dy) attends, per head,
// over the k*k samples of its window shifted by (dx, dy),
//
//   p_s = (x + dil (jx - r) + dx,  y + dil (jy - r) + dy),   s = jy * k + jx,  r = (k - 1) / 2
//   k~_s = bilinear(K, p_s),  v~_s = bilinear(V, p_s)   (zeros outside the image: grid_sample,
//                                                         align_corners=False, padding zeros)
//   o_t = sum_s softmax_s(scale q_t . k~_s) v~_s
//
// The window steps are integers, so the nine samples share one fractional part (ax, ay) =
// (dx - floor dx, dy - floor dy): their bilinear corners are the integer points of one patch
// (uy, ux) in U x U around (y + floor dy, x + floor dx), with U = {-r .. r + 1} for dil = 1
// (a 4x4 patch for k = 3) and U = {dil (j - r) + b : j < k, b in {0, 1}} otherwise, and their
// weights are products of the four shared weights (1 - ay, ay) x (1 - ax, ax). Hence, per
// query and head (D_p, E_p for the patch points p; points outside the image are zero):
//
//   D_p = scale q . K_p,   l_s = sum_c w_c D_{p(s,c)},   a = softmax(l),
//   A_p = sum_{(s,c) -> p} a_s w_c,   o = sum_p A_p V_p
//
// which is the same number as sampling first (the products are only regrouped), with one
// d-long dot per patch point instead of four per sample and no sampled k~ / v~ in memory.
// Backward recomputes D and the softmax (nothing but the inputs is saved), with E_p = g . V_p:
//
//   da_s = sum_c w_c E_p,  dl_s = a_s (da_s - sum a da),  B_p = sum_{(s,c) -> p} dl_s w_c
//   dq = scale sum_p B_p K_p,  dK_p += scale B_p q,  dV_p += A_p g,
//   d ax = sum_s sum_{c = (a, b)} wy_a (2b - 1) (dl_s D_p + a_s E_p)   (d ay likewise),
//
// the gradient grid_sample gives through its bilinear weights (floor has none). Forward runs
// in parallel over image rows (all heads of a pixel together: one geometry per pixel);
// backward over (image, head) so that every thread owns the K / V gradient slices it
// scatters into (no atomics); the offset gradient is written per head and summed after.
//
// Layout: qkv (B, H, W, 3, m, d), q, k, v stacked, d contiguous (other strides free: the
// channels-last output of one (3 C_out x C_in) projection, or a permuted view); offsets
// (B, 2, H, W) as (dx, dy) in pixels; output (B, H, W, m, d). Backward returns one
// (B, H, W, 3, m, d) gradient for qkv and the (B, 2, H, W) offset gradient.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "cpu_kernels.h"

namespace mmattn {
namespace {

// Strided view of one (B, H, W, m, d) map with d contiguous.
template <typename T>
struct Map {
  T* p;
  int64_t sb, sy, sx, sh;
  Map(const at::Tensor& t)
      : p(t.data_ptr<T>()), sb(t.stride(0)), sy(t.stride(1)), sx(t.stride(2)), sh(t.stride(3)) {}
  inline T* at(int64_t b, int64_t y, int64_t x, int64_t h) const {
    return p + b * sb + y * sy + x * sx + h * sh;
  }
};

constexpr int64_t kMaxK = 15;  // largest kernel_size: fixed per-thread arrays
constexpr int64_t kMaxNU = 2 * kMaxK;

// The patch of one query: nu x nu integer points; sample (jy, jx) corner (a, b) is the point
// (idx[jy][a], idx[jx][b]).
struct Window {
  int64_t k, dil, nu;
  int64_t uoff[kMaxNU];  // offsets of the patch axis from floor(x + dx)
  int64_t idx[2 * kMaxK];  // k x 2: patch index of window step j, corner b
  Window(int64_t k_, int64_t dil_) : k(k_), dil(dil_) {
    const int64_t r = (k - 1) / 2;
    nu = dil == 1 ? k + 1 : 2 * k;
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t b = 0; b < 2; ++b) {
        const int64_t u = dil == 1 ? j + b : 2 * j + b;
        uoff[u] = dil * (j - r) + b;
        idx[2 * j + b] = u;
      }
    }
  }
};

// The window with its sizes known at compile time where KS > 0 (then NU = KS + 1: dilation 1).
template <int KS, int NU>
struct Win {
  const Window& w;
  inline int64_t k() const { return KS ? KS : w.k; }
  inline int64_t nu() const { return NU ? NU : w.nu; }
  inline int64_t ix(int64_t j, int64_t b) const { return KS ? j + b : w.idx[2 * j + b]; }
};

// Per-pixel geometry: the four shared weights, and per patch point whether it lies in the
// image and its element offset in a map of strides (sy, sx).
template <typename T>
struct Geom {
  T wy[2], wx[2];
  int64_t cy[kMaxNU], cx[kMaxNU];
  char vy[kMaxNU], vx[kMaxNU];
  template <int KS, int NU>
  inline void set(const Win<KS, NU>& win, int64_t y, int64_t x, T dy, T dx, int64_t H,
                  int64_t W) {
    const T fy = std::floor(dy), fx = std::floor(dx);
    const T ay = dy - fy, ax = dx - fx;
    wy[0] = T(1) - ay;
    wy[1] = ay;
    wx[0] = T(1) - ax;
    wx[1] = ax;
    // |offset| is a few pixels times the dilation: the int conversion is exact
    const int64_t by = y + (int64_t)fy, bx = x + (int64_t)fx;
    for (int64_t u = 0; u < win.nu(); ++u) {
      cy[u] = by + win.w.uoff[u];
      cx[u] = bx + win.w.uoff[u];
      vy[u] = cy[u] >= 0 && cy[u] < H;
      vx[u] = cx[u] >= 0 && cx[u] < W;
    }
  }
  // po[p] = element offset of patch point p in a map of strides (sy, sx); pv[p] = inside
  template <int KS, int NU>
  inline void offsets(const Win<KS, NU>& win, int64_t sy, int64_t sx, int64_t* po,
                      char* pv) const {
    const int64_t nu = win.nu();
    for (int64_t uy = 0; uy < nu; ++uy)
      for (int64_t ux = 0; ux < nu; ++ux) {
        po[uy * nu + ux] = cy[uy] * sy + cx[ux] * sx;
        pv[uy * nu + ux] = vy[uy] & vx[ux];
      }
  }
};

// d-long dot and axpy; DC > 0: d = DC known at compile time (unrolled)
template <int DC, typename T>
inline T dot(const T* a, const T* b, int64_t d_) {
  const int64_t d = DC ? DC : d_;
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t c = 0; c < d; ++c) acc += a[c] * b[c];
  return acc;
}

template <int DC, typename T>
inline void axpy(T* __restrict__ y, T alpha, const T* __restrict__ x, int64_t d_) {
  const int64_t d = DC ? DC : d_;
#pragma omp simd
  for (int64_t c = 0; c < d; ++c) y[c] += alpha * x[c];
}

// Per sample s = (jy, jx): the bilinear blend of the patch values P (nu x nu).
template <int KS, int NU, typename T>
inline void blend(const Win<KS, NU>& win, const Geom<T>& g, const T* P, T* out) {
  const int64_t k = win.k(), nu = win.nu();
  for (int64_t jy = 0; jy < k; ++jy) {
    const T* r0 = P + win.ix(jy, 0) * nu;
    const T* r1 = P + win.ix(jy, 1) * nu;
    for (int64_t jx = 0; jx < k; ++jx) {
      const int64_t u0 = win.ix(jx, 0), u1 = win.ix(jx, 1);
      out[jy * k + jx] = g.wy[0] * (g.wx[0] * r0[u0] + g.wx[1] * r0[u1]) +
                         g.wy[1] * (g.wx[0] * r1[u0] + g.wx[1] * r1[u1]);
    }
  }
}

// softmax over the kk logits, in place
template <int KS, typename T>
inline void softmax(T* l, int64_t kk_) {
  const int64_t kk = KS ? KS * KS : kk_;
  T mx = l[0];
  for (int64_t s = 1; s < kk; ++s) mx = l[s] > mx ? l[s] : mx;
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t s = 0; s < kk; ++s) {
    l[s] = exp_softmax(l[s] - mx);
    sum += l[s];
  }
  const T inv = T(1) / sum;
  for (int64_t s = 0; s < kk; ++s) l[s] *= inv;
}

// P (nu x nu) = sum over samples s and corners c of coef_s w_c, scattered to the patch.
template <int KS, int NU, typename T>
inline void scatter_weights(const Win<KS, NU>& win, const Geom<T>& g, const T* coef, T* P) {
  const int64_t k = win.k(), nu = win.nu();
  for (int64_t p = 0; p < nu * nu; ++p) P[p] = T(0);
  for (int64_t jy = 0; jy < k; ++jy) {
    T* r0 = P + win.ix(jy, 0) * nu;
    T* r1 = P + win.ix(jy, 1) * nu;
    for (int64_t jx = 0; jx < k; ++jx) {
      const int64_t u0 = win.ix(jx, 0), u1 = win.ix(jx, 1);
      const T c = coef[jy * k + jx];
      const T c0 = c * g.wy[0], c1 = c * g.wy[1];
      r0[u0] += c0 * g.wx[0];
      r0[u1] += c0 * g.wx[1];
      r1[u0] += c1 * g.wx[0];
      r1[u1] += c1 * g.wx[1];
    }
  }
}

// Per-thread scratch (fixed size: kernel_size <= kMaxK).
template <typename T>
struct Scratch {
  T D[kMaxNU * kMaxNU], E[kMaxNU * kMaxNU], A[kMaxNU * kMaxNU], Bp[kMaxNU * kMaxNU];
  T a[kMaxK * kMaxK], da[kMaxK * kMaxK], dl[kMaxK * kMaxK];
  int64_t po[kMaxNU * kMaxNU], pg[kMaxNU * kMaxNU];
  char pv[kMaxNU * kMaxNU];
};

template <typename T, int DC, int KS, int NU>
void fwd_impl(const Map<T>& Q, const Map<T>& K, const Map<T>& V, const T* off, Map<T>& O,
              int64_t B, int64_t H, int64_t W, int64_t m, int64_t d_, const Window& window,
              T scale) {
  const int64_t d = DC ? DC : d_;
  const Win<KS, NU> win{window};
  const int64_t nu = win.nu(), np = nu * nu, kk = win.k() * win.k();
  at::parallel_for(0, B * H, 1, [&](int64_t r0, int64_t r1) {
    Geom<T> g;
    std::unique_ptr<Scratch<T>> sp(new Scratch<T>());
    Scratch<T>& S = *sp;
    std::vector<T> acc_v(d + 16);
    T* acc = acc_v.data();
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / H, y = row % H;
      const T* offx = off + (b * 2) * H * W + y * W;
      const T* offy = offx + H * W;
      for (int64_t x = 0; x < W; ++x) {
        g.set(win, y, x, offy[x], offx[x], H, W);
        g.offsets(win, K.sy, K.sx, S.po, S.pv);  // q, k, v share their strides (one qkv)
        for (int64_t h = 0; h < m; ++h) {
          const T* q = Q.at(b, y, x, h);
          const T* kb = K.p + b * K.sb + h * K.sh;
          const T* vb = V.p + b * V.sb + h * V.sh;
          for (int64_t p = 0; p < np; ++p)
            S.D[p] = S.pv[p] ? scale * dot<DC>(q, kb + S.po[p], d) : T(0);
          blend(win, g, S.D, S.a);
          softmax<KS>(S.a, kk);
          scatter_weights(win, g, S.a, S.A);
          for (int64_t c = 0; c < d; ++c) acc[c] = T(0);
          for (int64_t p = 0; p < np; ++p)
            if (S.pv[p]) axpy<DC>(acc, S.A[p], vb + S.po[p], d);
          T* o = O.at(b, y, x, h);
          for (int64_t c = 0; c < d; ++c) o[c] = acc[c];
        }
      }
    }
  });
}

template <typename T, int DC, int KS, int NU>
void bwd_impl(const Map<T>& G, const Map<T>& Q, const Map<T>& K, const Map<T>& V, const T* off,
              Map<T>& dQ, Map<T>& dK, Map<T>& dV, T* doff_heads, int64_t B, int64_t H,
              int64_t W, int64_t m, int64_t d_, const Window& window, T scale) {
  const int64_t d = DC ? DC : d_;
  const Win<KS, NU> win{window};
  const int64_t nu = win.nu(), np = nu * nu, ksize = win.k(), kk = ksize * ksize;
  at::parallel_for(0, B * m, 1, [&](int64_t g0, int64_t g1) {
    Geom<T> geo;
    std::unique_ptr<Scratch<T>> sp(new Scratch<T>());
    Scratch<T>& S = *sp;
    std::vector<T> acc_v(d + 16);
    T* acc = acc_v.data();
    for (int64_t b = g0 / m; b * m < g1; ++b) {
      const int64_t h0 = std::max(g0, b * m) - b * m, h1 = std::min(g1, (b + 1) * m) - b * m;
      // this thread owns heads h0..h1 of image b: zero their K / V gradients
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          for (int64_t h = h0; h < h1; ++h) {
            std::fill(dK.at(b, y, x, h), dK.at(b, y, x, h) + d, T(0));
            std::fill(dV.at(b, y, x, h), dV.at(b, y, x, h) + d, T(0));
          }
      const T* offx_b = off + b * 2 * H * W;
      const T* offy_b = offx_b + H * W;
      for (int64_t y = 0; y < H; ++y) {
        for (int64_t x = 0; x < W; ++x) {
          const int64_t i = y * W + x;
          geo.set(win, y, x, offy_b[i], offx_b[i], H, W);
          geo.offsets(win, K.sy, K.sx, S.po, S.pv);
          for (int64_t p = 0; p < np; ++p)  // dK and dV share their strides (one dqkv)
            S.pg[p] = geo.cy[p / nu] * dK.sy + geo.cx[p % nu] * dK.sx;
          for (int64_t h = h0; h < h1; ++h) {
            const T* q = Q.at(b, y, x, h);
            const T* gr = G.at(b, y, x, h);
            const T* kb = K.p + b * K.sb + h * K.sh;
            const T* vb = V.p + b * V.sb + h * V.sh;
            T* dkb = dK.p + b * dK.sb + h * dK.sh;
            T* dvb = dV.p + b * dV.sb + h * dV.sh;
            for (int64_t p = 0; p < np; ++p) {
              if (S.pv[p]) {
                S.D[p] = scale * dot<DC>(q, kb + S.po[p], d);
                S.E[p] = dot<DC>(gr, vb + S.po[p], d);
              } else {
                S.D[p] = T(0);
                S.E[p] = T(0);
              }
            }
            blend(win, geo, S.D, S.a);
            softmax<KS>(S.a, kk);
            blend(win, geo, S.E, S.da);  // da_s = g . v~_s
            T sad = 0;
            for (int64_t s = 0; s < kk; ++s) sad += S.a[s] * S.da[s];
            for (int64_t s = 0; s < kk; ++s) S.dl[s] = S.a[s] * (S.da[s] - sad);
            // offset gradient through the bilinear weights
            T gx = 0, gy = 0;
            for (int64_t jy = 0; jy < ksize; ++jy) {
              const int64_t p0 = win.ix(jy, 0) * nu, p1 = win.ix(jy, 1) * nu;
              for (int64_t jx = 0; jx < ksize; ++jx) {
                const int64_t u0 = win.ix(jx, 0), u1 = win.ix(jx, 1);
                const int64_t s = jy * ksize + jx;
                const T ds = S.dl[s], as = S.a[s];
                const T f00 = ds * S.D[p0 + u0] + as * S.E[p0 + u0];
                const T f01 = ds * S.D[p0 + u1] + as * S.E[p0 + u1];
                const T f10 = ds * S.D[p1 + u0] + as * S.E[p1 + u0];
                const T f11 = ds * S.D[p1 + u1] + as * S.E[p1 + u1];
                gx += geo.wy[0] * (f01 - f00) + geo.wy[1] * (f11 - f10);
                gy += geo.wx[0] * (f10 - f00) + geo.wx[1] * (f11 - f01);
              }
            }
            T* dof = doff_heads + ((b * m + h) * 2) * H * W + i;
            dof[0] = gx;
            dof[H * W] = gy;
            scatter_weights(win, geo, S.a, S.A);
            scatter_weights(win, geo, S.dl, S.Bp);
            for (int64_t c = 0; c < d; ++c) acc[c] = T(0);
            for (int64_t p = 0; p < np; ++p) {
              if (!S.pv[p]) continue;
              const T bs = scale * S.Bp[p];
              axpy<DC>(acc, bs, kb + S.po[p], d);
              axpy<DC>(dkb + S.pg[p], bs, q, d);
              axpy<DC>(dvb + S.pg[p], S.A[p], gr, d);
            }
            T* dq = dQ.at(b, y, x, h);
            for (int64_t c = 0; c < d; ++c) dq[c] = acc[c];
          }
        }
      }
    }
  });
}

// f(integral_constant<int, DC>, integral_constant<int, KS>, integral_constant<int, NU>): the
// usual head widths (8..64) and the 3x3 window of dilation 1 compiled apart (unrolled loops)
// in float32; float64 (exactness tests) and other shapes take the generic code.
template <typename T, typename F>
void specialised(int64_t d, int64_t k, int64_t dil, F&& f) {
  using std::integral_constant;
  if (!std::is_same<T, float>::value) return f(integral_constant<int, 0>{},
                                               integral_constant<int, 0>{},
                                               integral_constant<int, 0>{});
  auto with_window = [&](auto dc) {
    if (k == 3 && dil == 1)
      f(dc, integral_constant<int, 3>{}, integral_constant<int, 4>{});
    else
      f(dc, integral_constant<int, 0>{}, integral_constant<int, 0>{});
  };
  switch (d) {
    case 8: with_window(integral_constant<int, 8>{}); break;
    case 16: with_window(integral_constant<int, 16>{}); break;
    case 32: with_window(integral_constant<int, 32>{}); break;
    case 64: with_window(integral_constant<int, 64>{}); break;
    default: with_window(integral_constant<int, 0>{});
  }
}

void check_inputs(const char* op, const at::Tensor& qkv, const at::Tensor& offsets,
                  int64_t kernel_size, int64_t dilation) {
  TORCH_CHECK(qkv.dim() == 6 && qkv.size(3) == 3, op,
              ": qkv must be (B, H, W, 3, num_heads, head_channels) (q, k, v stacked in dim 3); "
              "got ", qkv.sizes());
  const int64_t B = qkv.size(0), H = qkv.size(1), W = qkv.size(2);
  TORCH_CHECK(offsets.dim() == 4 && offsets.size(0) == B && offsets.size(1) == 2 &&
                  offsets.size(2) == H && offsets.size(3) == W,
              op, ": offsets must be (B, 2, H, W) = (", B, ", 2, ", H, ", ", W, ") as (dx, dy); got ",
              offsets.sizes());
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1 && kernel_size <= kMaxK, op,
              ": kernel_size must be odd, 1..", kMaxK, "; got ", kernel_size);
  TORCH_CHECK(dilation >= 1, op, ": dilation must be >= 1; got ", dilation);
  TORCH_CHECK(offsets.scalar_type() == qkv.scalar_type(), op,
              ": qkv and offsets must share one dtype; got ", qkv.scalar_type(), " and ",
              offsets.scalar_type());
  TORCH_CHECK(qkv.scalar_type() == at::kFloat || qkv.scalar_type() == at::kDouble, op,
              ": dtype must be float32 or float64; got ", qkv.scalar_type());
}

// d contiguous (any other strides), else a contiguous copy
at::Tensor lastdim_contiguous(const at::Tensor& t) {
  return t.stride(-1) == 1 || t.size(-1) == 1 ? t : t.contiguous();
}

at::Tensor la_attn_fwd(const at::Tensor& qkv_, const at::Tensor& offsets_, int64_t kernel_size,
                       int64_t dilation, double scale) {
  check_inputs("la_attn_fwd", qkv_, offsets_, kernel_size, dilation);
  auto qkv = lastdim_contiguous(qkv_);
  auto off = offsets_.contiguous();
  const int64_t B = qkv.size(0), H = qkv.size(1), W = qkv.size(2), m = qkv.size(4),
                d = qkv.size(5);
  auto out = at::empty({B, H, W, m, d}, qkv.options());
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "la_attn_fwd", [&] {
    Map<scalar_t> Q(qkv.select(3, 0)), K(qkv.select(3, 1)), V(qkv.select(3, 2)), O(out);
    const scalar_t* o = off.data_ptr<scalar_t>();
    const Window win(kernel_size, dilation);
    specialised<scalar_t>(d, kernel_size, dilation, [&](auto dc, auto ks, auto nu) {
      fwd_impl<scalar_t, decltype(dc)::value, decltype(ks)::value, decltype(nu)::value>(
          Q, K, V, o, O, B, H, W, m, d, win, (scalar_t)scale);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> la_attn_bwd(const at::Tensor& dout_, const at::Tensor& qkv_,
                                               const at::Tensor& offsets_, int64_t kernel_size,
                                               int64_t dilation, double scale) {
  check_inputs("la_attn_bwd", qkv_, offsets_, kernel_size, dilation);
  const int64_t B = qkv_.size(0), H = qkv_.size(1), W = qkv_.size(2), m = qkv_.size(4),
                d = qkv_.size(5);
  TORCH_CHECK(dout_.dim() == 5 && dout_.size(0) == B && dout_.size(1) == H &&
                  dout_.size(2) == W && dout_.size(3) == m && dout_.size(4) == d,
              "la_attn_bwd: dout must be (B, H, W, num_heads, head_channels) = (", B, ", ", H,
              ", ", W, ", ", m, ", ", d, "); got ", dout_.sizes());
  auto qkv = lastdim_contiguous(qkv_);
  auto dout = lastdim_contiguous(dout_.to(qkv.scalar_type()));
  auto off = offsets_.contiguous();
  auto dqkv = at::empty({B, H, W, 3, m, d}, qkv.options());
  auto doff_heads = at::empty({B, m, 2, H, W}, qkv.options());
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "la_attn_bwd", [&] {
    Map<scalar_t> Gm(dout), Q(qkv.select(3, 0)), K(qkv.select(3, 1)), V(qkv.select(3, 2)),
        dQ(dqkv.select(3, 0)), dK(dqkv.select(3, 1)), dV(dqkv.select(3, 2));
    const scalar_t* o = off.data_ptr<scalar_t>();
    scalar_t* dof = doff_heads.data_ptr<scalar_t>();
    const Window win(kernel_size, dilation);
    specialised<scalar_t>(d, kernel_size, dilation, [&](auto dc, auto ks, auto nu) {
      bwd_impl<scalar_t, decltype(dc)::value, decltype(ks)::value, decltype(nu)::value>(
          Gm, Q, K, V, o, dQ, dK, dV, dof, B, H, W, m, d, win, (scalar_t)scale);
    });
  });
  return {dqkv, doff_heads.sum(1)};
}

}  // namespace
}  // namespace mmattn

TORCH_LIBRARY_FRAGMENT(mmattn, m) {
  m.def("la_attn_fwd(Tensor qkv, Tensor offsets, int kernel_size, int dilation, float scale) "
        "-> Tensor");
  m.def("la_attn_bwd(Tensor dout, Tensor qkv, Tensor offsets, int kernel_size, int dilation, "
        "float scale) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmattn, CPU, m) {
  m.impl("la_attn_fwd", &mmattn::la_attn_fwd);
  m.impl("la_attn_bwd", &mmattn::la_attn_bwd);
}
