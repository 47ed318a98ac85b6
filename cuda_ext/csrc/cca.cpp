// Schemas of the wsss_cca operators. Kernels: cuda/cca_kernel.cu (CUDA only; on CPU wsss.ops
// uses its pure-PyTorch path). Autograd and fake-tensor rules: wsss_cca/__init__.py.

#include <Python.h>
#include <torch/library.h>

extern "C" {
// `import wsss_cca._C` loads this library, which runs the registrations below.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
}

TORCH_LIBRARY(wsss_cca, m) {
  // out (N, C, H, W) and the per-position log-sum-exp of the energies (N, H, W), in the
  // accumulation dtype (float32 for half/bfloat16 inputs), which the backward reuses.
  m.def("cca_forward(Tensor query, Tensor key, Tensor value) -> (Tensor, Tensor)");
  // gradients of query, key and value given the gradient of out.
  m.def(
      "cca_backward(Tensor grad_out, Tensor query, Tensor key, Tensor value, Tensor out, "
      "Tensor lse) -> (Tensor, Tensor, Tensor)");
}
