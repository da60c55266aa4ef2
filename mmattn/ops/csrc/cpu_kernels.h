// Helpers shared by the compiled CPU kernels: row-major GEMM through the BLAS that libtorch_cpu
// links (MKL's Fortran sgemm_/dgemm_, exported by the torch wheel) and a vectorisable exp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b,
            const int* ldb, const double* beta, double* c, const int* ldc);
}

namespace mmattn {

// Row-major C (M x N) = alpha * op(A) op(B) + beta * C, with op(A) M x K and op(B) K x N:
// the column-major call for C^T = op(B)^T op(A)^T.
inline void gemm_rm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const char ca = ta ? 'T' : 'N', cb = tb ? 'T' : 'N';
  const int m = (int)N, n = (int)M, k = (int)K, la = (int)ldb, lb = (int)lda, lc = (int)ldc;
  sgemm_(&cb, &ca, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
}

inline void gemm_rm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                    const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                    double* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const char ca = ta ? 'T' : 'N', cb = tb ? 'T' : 'N';
  const int m = (int)N, n = (int)M, k = (int)K, la = (int)ldb, lb = (int)lda, lc = (int)ldc;
  dgemm_(&cb, &ca, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
}

// exp for softmax arguments (x <= ~0): Cody-Waite range reduction and Cephes' degree-6
// polynomial, written without branches so that the compiler vectorises the loops calling it
// (about 2 ulp; inputs below -87 give ~0). Double precision uses std::exp.
inline float exp_softmax(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float t = x * 1.44269504088896341f;
  const float n = std::floor(t + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline double exp_softmax(double x) { return std::exp(x); }

}  // namespace mmattn
