// Register-blocked float32 GEMMs for the small shapes of the attention kernels (inner
// dimensions of 2-64 and tiles of a few hundred keys), where a BLAS call spends more in
// packing than in arithmetic. Written with GCC vector types, which the compiler maps to the
// widest registers of the build's -march (AVX-512: one zmm per 16 floats; AVX2: two ymm).
//
//   gemm_vn:  C (M x N) [+]= A (M x K) B (K x N), vectorised over N (N a multiple of 16);
//   gemm_dot: C (M x N) [+]= A (M x K) BT^T, BT (N x K), vectorised over K (K a multiple of
//             16; padded columns of A or BT must be zero).
#pragma once
#include <algorithm>
#include <cstdint>

namespace mmattn {
namespace sg {

typedef float vf __attribute__((vector_size(64)));
typedef float vfu __attribute__((vector_size(64), aligned(4)));
constexpr int64_t VL = 16;

inline vf vload(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void vstore(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < VL; ++i) s += v[i];
  return s;
}

template <int MR, int NV>
inline void vn_micro(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                     float* C, int64_t ldc, bool acc) {
  vf c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = acc ? vload(C + r * ldc + v * VL) : vf{};
  for (int64_t k = 0; k < K; ++k) {
    vf b[NV];
    for (int v = 0; v < NV; ++v) b[v] = vload(B + k * ldb + v * VL);
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * lda + k];
      for (int v = 0; v < NV; ++v) c[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) vstore(C + r * ldc + v * VL, c[r][v]);
}

template <int MR>
inline void vn_row(int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                   int64_t ldb, float* C, int64_t ldc, bool acc) {
  int64_t j = 0;
  for (; j + 4 * VL <= N; j += 4 * VL) vn_micro<MR, 4>(K, A, lda, B + j, ldb, C + j, ldc, acc);
  switch ((N - j) / VL) {
    case 3: vn_micro<MR, 3>(K, A, lda, B + j, ldb, C + j, ldc, acc); break;
    case 2: vn_micro<MR, 2>(K, A, lda, B + j, ldb, C + j, ldc, acc); break;
    case 1: vn_micro<MR, 1>(K, A, lda, B + j, ldb, C + j, ldc, acc); break;
    default: break;
  }
}

inline void gemm_vn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float* C, int64_t ldc, bool acc) {
  int64_t i = 0;
  for (; i + 4 <= M; i += 4) vn_row<4>(N, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, acc);
  switch (M - i) {
    case 3: vn_row<3>(N, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, acc); break;
    case 2: vn_row<2>(N, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, acc); break;
    case 1: vn_row<1>(N, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, acc); break;
    default: break;
  }
}

template <int MR, int NB>
inline void dot_micro(int64_t K, const float* A, int64_t lda, const float* BT, int64_t ldb,
                      float* C, int64_t ldc, bool acc) {
  vf s[MR][NB];
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < NB; ++n) s[r][n] = vf{};
  for (int64_t k = 0; k < K; k += VL) {
    vf a[MR], b[NB];
    for (int r = 0; r < MR; ++r) a[r] = vload(A + r * lda + k);
    for (int n = 0; n < NB; ++n) b[n] = vload(BT + n * ldb + k);
    for (int r = 0; r < MR; ++r)
      for (int n = 0; n < NB; ++n) s[r][n] += a[r] * b[n];
  }
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < NB; ++n) {
      const float t = hsum(s[r][n]);
      C[r * ldc + n] = acc ? C[r * ldc + n] + t : t;
    }
}

template <int MR>
inline void dot_row(int64_t N, int64_t K, const float* A, int64_t lda, const float* BT,
                    int64_t ldb, float* C, int64_t ldc, bool acc) {
  int64_t n = 0;
  for (; n + 4 <= N; n += 4) dot_micro<MR, 4>(K, A, lda, BT + n * ldb, ldb, C + n, ldc, acc);
  switch (N - n) {
    case 3: dot_micro<MR, 3>(K, A, lda, BT + n * ldb, ldb, C + n, ldc, acc); break;
    case 2: dot_micro<MR, 2>(K, A, lda, BT + n * ldb, ldb, C + n, ldc, acc); break;
    case 1: dot_micro<MR, 1>(K, A, lda, BT + n * ldb, ldb, C + n, ldc, acc); break;
    default: break;
  }
}

inline void gemm_dot(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                     const float* BT, int64_t ldb, float* C, int64_t ldc, bool acc) {
  int64_t i = 0;
  for (; i + 4 <= M; i += 4) dot_row<4>(N, K, A + i * lda, lda, BT, ldb, C + i * ldc, ldc, acc);
  switch (M - i) {
    case 3: dot_row<3>(N, K, A + i * lda, lda, BT, ldb, C + i * ldc, ldc, acc); break;
    case 2: dot_row<2>(N, K, A + i * lda, lda, BT, ldb, C + i * ldc, ldc, acc); break;
    case 1: dot_row<1>(N, K, A + i * lda, lda, BT, ldb, C + i * ldc, ldc, acc); break;
    default: break;
  }
}

// dst (cols x ldd, first rows entries of each row) = src (rows x cols)^T; dst[c][rows..ldd) = 0
inline void transpose_pad(const float* src, int64_t rows, int64_t cols, float* dst,
                          int64_t ldd) {
  for (int64_t c = 0; c < cols; ++c) {
    float* d = dst + c * ldd;
    for (int64_t r = 0; r < rows; ++r) d[r] = src[r * cols + c];
    for (int64_t r = rows; r < ldd; ++r) d[r] = 0.f;
  }
}

// dst (rows x cols) += src^T, src (cols x lds)
inline void add_transposed(float* dst, int64_t rows, int64_t cols, const float* src,
                           int64_t lds) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] += src[c * lds + r];
}

}  // namespace sg
}  // namespace mmattn
