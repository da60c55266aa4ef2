// mmattn._ext: the compiled CPU kernels. Each kernel is one file in this folder that registers
// its operators in the ``mmattn`` torch library (TORCH_LIBRARY_FRAGMENT); this file only makes
// the shared object importable as a Python module, so that ``import mmattn._ext`` loads them
// all (they are then ``torch.ops.mmattn.<name>``). See mmattn/ops/__init__.py.
#include <torch/extension.h>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmattn compiled CPU kernels (registered as torch.ops.mmattn.*)";
#ifdef __AVX512F__
  m.attr("isa") = "avx512";
#elif defined(__AVX2__)
  m.attr("isa") = "avx2";
#else
  m.attr("isa") = "baseline";
#endif
}
