// float32 matrix product for XLA:CPU through Intel MKL, as an XLA FFI custom call.
//
// Why: XLA:CPU's own float32 matmul (Eigen) reaches ~290 GFLOP/s on the recurrent
// [128, 1000] @ [1000, 4000] product of RNN1 on 2 Sapphire Rapids cores, MKL's ~420 with
// the right-hand side packed once per sequence (see rinq_jax/native/gemm.py).
//
// Targets (row-major float32, C = op(A) @ op(B), op = transpose when the flag is set):
//   rinq_sgemm(a, b; trans_a, trans_b) -> c
//   rinq_sgemm_pack(b; trans_b, rows) -> packed      (MKL's packed format of op(B), uint8)
//   rinq_sgemm_packed(a, packed; n) -> c              (C = A @ op(B), B given packed)
// MKL is linked through libmkl_rt (LP64: 32-bit integers); the sizes are checked.

#include <cstdint>
#include <cstring>
#include <limits>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

extern "C" {
void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float* a, int lda, const float* b, int ldb, float beta, float* c,
                 int ldc);
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k);
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                      const float* src, int ld, float* dest);
void cblas_sgemm_compute(int layout, int trans_a, int trans_b, int m, int n, int k,
                         const float* a, int lda, const float* b, int ldb, float beta,
                         float* c, int ldc);
int MKL_Set_Threading_Layer(int layer);
int MKL_CBWR_Set(int settings);
}

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

bool FitsInt(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

ffi::Error Sgemm(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                 ffi::ResultBuffer<ffi::F32> c, bool trans_a, bool trans_b) {
  auto da = a.dimensions(), db = b.dimensions();
  if (da.size() != 2 || db.size() != 2) {
    return ffi::Error::InvalidArgument("rinq_sgemm: operands must be 2-D");
  }
  const int64_t m = trans_a ? da[1] : da[0], k = trans_a ? da[0] : da[1];
  const int64_t n = trans_b ? db[0] : db[1], k_b = trans_b ? db[1] : db[0];
  if (k != k_b) return ffi::Error::InvalidArgument("rinq_sgemm: contraction sizes differ");
  if (!FitsInt(m) || !FitsInt(n) || !FitsInt(k) || !FitsInt(da[1]) || !FitsInt(db[1])) {
    return ffi::Error::InvalidArgument("rinq_sgemm: a dimension exceeds 2^31 - 1");
  }
  if (m == 0 || n == 0) return ffi::Error::Success();
  if (k == 0) {
    std::memset(c->typed_data(), 0, sizeof(float) * m * n);
    return ffi::Error::Success();
  }
  cblas_sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, m, n, k,
              1.0f, a.typed_data(), da[1], b.typed_data(), db[1], 0.0f, c->typed_data(), n);
  return ffi::Error::Success();
}

ffi::Error SgemmPack(ffi::Buffer<ffi::F32> b, ffi::ResultBuffer<ffi::U8> packed, bool trans_b,
                     int64_t rows) {
  auto db = b.dimensions();
  if (db.size() != 2) return ffi::Error::InvalidArgument("rinq_sgemm_pack: b must be 2-D");
  const int64_t n = trans_b ? db[0] : db[1], k = trans_b ? db[1] : db[0];
  if (!FitsInt(n) || !FitsInt(k) || !FitsInt(rows) || rows == 0 || n == 0 || k == 0) {
    return ffi::Error::InvalidArgument("rinq_sgemm_pack: sizes must be in [1, 2^31 - 1]");
  }
  if (packed->size_bytes() < cblas_sgemm_pack_get_size(kBMatrix, rows, n, k)) {
    return ffi::Error::InvalidArgument("rinq_sgemm_pack: output buffer too small");
  }
  cblas_sgemm_pack(kRowMajor, kBMatrix, trans_b ? kTrans : kNoTrans, rows, n, k, 1.0f,
                   b.typed_data(), db[1], reinterpret_cast<float*>(packed->typed_data()));
  return ffi::Error::Success();
}

ffi::Error SgemmPacked(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::U8> packed,
                       ffi::ResultBuffer<ffi::F32> c, int64_t n) {
  auto da = a.dimensions();
  if (da.size() != 2) return ffi::Error::InvalidArgument("rinq_sgemm_packed: a must be 2-D");
  const int64_t m = da[0], k = da[1];
  if (!FitsInt(m) || !FitsInt(n) || !FitsInt(k) || m == 0 || n == 0 || k == 0) {
    return ffi::Error::InvalidArgument("rinq_sgemm_packed: sizes must be in [1, 2^31 - 1]");
  }
  if (packed.size_bytes() < cblas_sgemm_pack_get_size(kBMatrix, m, n, k)) {
    return ffi::Error::InvalidArgument("rinq_sgemm_packed: packed buffer too small");
  }
  // ldb is ignored for a packed B.
  cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, m, n, k, a.typed_data(), k,
                      reinterpret_cast<const float*>(packed.typed_data()), n, 0.0f,
                      c->typed_data(), n);
  return ffi::Error::Success();
}

}  // namespace

extern "C" {

// Bytes of MKL's packed op(B) for products with `rows` rows (Python sizes the buffer).
size_t rinq_sgemm_pack_size(int rows, int n, int k) {
  return cblas_sgemm_pack_get_size(kBMatrix, rows, n, k);
}

// Called once, before any product: MKL's threading layer (0 Intel OpenMP, 1 sequential,
// 3 GNU OpenMP), and conditional numerical reproducibility in its AUTO mode (2), so that a
// product does not depend on the operands' memory alignment: a training run resumed from a
// checkpoint must repeat the uninterrupted one bit for bit. Returns 0 on success.
int rinq_mkl_init(int threading_layer) {
  if (MKL_Set_Threading_Layer(threading_layer) < 0) return 1;
  return MKL_CBWR_Set(2) == 0 ? 0 : 2;
}

}  // extern "C"

XLA_FFI_DEFINE_HANDLER_SYMBOL(RinqSgemm, Sgemm,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<bool>("trans_a")
                                  .Attr<bool>("trans_b"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(RinqSgemmPack, SgemmPack,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::U8>>()
                                  .Attr<bool>("trans_b")
                                  .Attr<int64_t>("rows"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(RinqSgemmPacked, SgemmPacked,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::U8>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("n"));
