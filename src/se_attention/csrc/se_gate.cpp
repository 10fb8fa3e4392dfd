// An SE block's excitation and rescaling after the squeeze: s = sigmoid(W2 relu(W1 z)) and y = s x,
// forward and backward, for the pooled maps the training engine keeps (channels last).
//
// The excitation is two tiny matrix products per block (64 x 32 by 32 x 2 for the first one). Through
// PyTorch, each is a call into MKL, which wakes its threads for a few thousand multiply-adds: in a
// training step, the SE model's 18 such products and the rescaling's separate passes cost about 2 ms
// more than the CNN's step (an AMD EPYC, 2 threads). Here they are plain loops, one sample per task,
// and the rescaling's backward (the map's gradient and the gates' gradient) is one pass.
//
// Sums over the batch (the weights' gradients) run in sample order on one thread, and sums over a map
// per sample: the result does not depend on the number of threads. Values equal PyTorch's to float
// rounding, not bit for bit (tests/test_fused.py).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

using at::Tensor;

void check_weights(const Tensor& z, const Tensor& w1, const Tensor& w2) {
  TORCH_CHECK(z.device().is_cpu() && z.scalar_type() == at::kFloat && z.dim() == 2,
              "se_gate: expected a float32 CPU squeeze N x C, found ", z.scalar_type(), " ", z.sizes());
  const int64_t C = z.size(1);
  TORCH_CHECK(w1.device().is_cpu() && w1.scalar_type() == at::kFloat && w1.dim() == 2 && w1.size(1) == C,
              "se_gate: expected fc1's weight of shape [hidden, ", C, "] (float32, CPU), found ", w1.scalar_type(),
              " ", w1.sizes());
  TORCH_CHECK(w2.device().is_cpu() && w2.scalar_type() == at::kFloat && w2.dim() == 2 && w2.size(0) == C &&
                  w2.size(1) == w1.size(0),
              "se_gate: expected fc2's weight of shape [", C, ", ", w1.size(0), "] (float32, CPU), found ",
              w2.scalar_type(), " ", w2.sizes());
}

void check_map(const char* what, const Tensor& x, const Tensor& z) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 && x.size(0) == z.size(0) &&
                  x.size(1) == z.size(1),
              "se_gate: expected ", what, " of shape [", z.size(0), ", ", z.size(1), ", H, W] (float32, CPU), found ",
              x.scalar_type(), " ", x.sizes());
}

// (pooled, z, fc1's weight, fc2's weight) -> (s pooled, s, relu(W1 z)): the output, the gates and the
// hidden units backward needs.
std::vector<Tensor> se_gate(const Tensor& pooled_in, const Tensor& z_in, const Tensor& w1_in, const Tensor& w2_in) {
  check_weights(z_in, w1_in, w2_in);
  check_map("the pooled map", pooled_in, z_in);
  const Tensor x = pooled_in.contiguous(at::MemoryFormat::ChannelsLast);
  const Tensor z = z_in.contiguous(), w1 = w1_in.contiguous(), w2 = w2_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), Hd = w1.size(0);
  Tensor out = at::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  Tensor s = at::empty({N, C}, z.options()), hidden = at::empty({N, Hd}, z.options());
  const float *px = x.data_ptr<float>(), *pz = z.data_ptr<float>(), *pw1 = w1.data_ptr<float>(),
              *pw2 = w2.data_ptr<float>();
  float *po = out.data_ptr<float>(), *ps = s.data_ptr<float>(), *ph = hidden.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      float* h = ph + n * Hd;
      float* gate = ps + n * C;
      for (int64_t j = 0; j < Hd; ++j) {
        float a = 0.0f;
        for (int64_t c = 0; c < C; ++c) a += pw1[j * C + c] * pz[n * C + c];
        h[j] = std::max(a, 0.0f);
      }
      for (int64_t c = 0; c < C; ++c) {
        float a = 0.0f;
        for (int64_t j = 0; j < Hd; ++j) a += pw2[c * Hd + j] * h[j];
        gate[c] = 1.0f / (1.0f + std::exp(-a));
      }
      const float* xi = px + n * HW * C;
      float* oi = po + n * HW * C;
      for (int64_t p = 0; p < HW; ++p)
        for (int64_t c = 0; c < C; ++c) oi[p * C + c] = xi[p * C + c] * gate[c];
    }
  });
  return {out, s, hidden};
}

// The output's gradient -> the gradients of the pooled map, of z and of both weights.
std::vector<Tensor> se_gate_backward(const Tensor& grad_out_in, const Tensor& pooled_in, const Tensor& z_in,
                                     const Tensor& w1_in, const Tensor& w2_in, const Tensor& hidden_in,
                                     const Tensor& s_in) {
  check_weights(z_in, w1_in, w2_in);
  check_map("the pooled map", pooled_in, z_in);
  check_map("the output's gradient", grad_out_in, z_in);
  TORCH_CHECK(grad_out_in.sizes() == pooled_in.sizes(), "se_gate_backward: expected the output's gradient of shape ",
              pooled_in.sizes(), ", found ", grad_out_in.sizes());
  const Tensor x = pooled_in.contiguous(at::MemoryFormat::ChannelsLast);
  const Tensor g = grad_out_in.contiguous(at::MemoryFormat::ChannelsLast);
  const Tensor z = z_in.contiguous(), w1 = w1_in.contiguous(), w2 = w2_in.contiguous();
  const Tensor hidden = hidden_in.contiguous(), s = s_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), Hd = w1.size(0);
  TORCH_CHECK(hidden.sizes() == at::IntArrayRef({N, Hd}) && s.sizes() == at::IntArrayRef({N, C}),
              "se_gate_backward: expected hidden units [", N, ", ", Hd, "] and gates [", N, ", ", C, "], found ",
              hidden.sizes(), " and ", s.sizes());
  Tensor grad_x = at::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  Tensor grad_z = at::empty({N, C}, z.options());
  Tensor d_pre = at::empty({N, C}, z.options()), d_hidden = at::empty({N, Hd}, z.options());
  const float *px = x.data_ptr<float>(), *pg = g.data_ptr<float>(), *pz = z.data_ptr<float>(),
              *pw1 = w1.data_ptr<float>(), *pw2 = w2.data_ptr<float>(), *ph = hidden.data_ptr<float>(),
              *ps = s.data_ptr<float>();
  float *pgx = grad_x.data_ptr<float>(), *pgz = grad_z.data_ptr<float>(), *pda = d_pre.data_ptr<float>(),
        *pdh = d_hidden.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> grad_s(C);
    for (int64_t n = begin; n < end; ++n) {
      const float* gate = ps + n * C;
      const float* xi = px + n * HW * C;
      const float* gi = pg + n * HW * C;
      float* gxi = pgx + n * HW * C;
      std::fill(grad_s.begin(), grad_s.end(), 0.0f);
      for (int64_t p = 0; p < HW; ++p) {
        for (int64_t c = 0; c < C; ++c) {
          gxi[p * C + c] = gi[p * C + c] * gate[c];
          grad_s[c] += gi[p * C + c] * xi[p * C + c];
        }
      }
      float* da = pda + n * C;  // through the sigmoid
      for (int64_t c = 0; c < C; ++c) da[c] = grad_s[c] * (1.0f - gate[c]) * gate[c];
      const float* h = ph + n * Hd;
      float* dh = pdh + n * Hd;  // through fc2 and the ReLU
      for (int64_t j = 0; j < Hd; ++j) {
        float a = 0.0f;
        for (int64_t c = 0; c < C; ++c) a += da[c] * pw2[c * Hd + j];
        dh[j] = h[j] > 0.0f ? a : 0.0f;
      }
      for (int64_t c = 0; c < C; ++c) {  // through fc1
        float a = 0.0f;
        for (int64_t j = 0; j < Hd; ++j) a += dh[j] * pw1[j * C + c];
        pgz[n * C + c] = a;
      }
    }
  });
  // The weights' gradients: sums over the batch, in sample order.
  Tensor grad_w1 = at::zeros({Hd, C}, z.options()), grad_w2 = at::zeros({C, Hd}, z.options());
  float *pgw1 = grad_w1.data_ptr<float>(), *pgw2 = grad_w2.data_ptr<float>();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < Hd; ++j) pgw2[c * Hd + j] += pda[n * C + c] * ph[n * Hd + j];
    for (int64_t j = 0; j < Hd; ++j)
      for (int64_t c = 0; c < C; ++c) pgw1[j * C + c] += pdh[n * Hd + j] * pz[n * C + c];
  }
  return {grad_x, grad_z, grad_w1, grad_w2};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(se_fused, m) {
  m.def("se_gate(Tensor pooled, Tensor z, Tensor w1, Tensor w2) -> Tensor[]");
  m.def("se_gate_backward(Tensor grad_out, Tensor pooled, Tensor z, Tensor w1, Tensor w2, Tensor hidden, "
        "Tensor s) -> Tensor[]");
  m.impl("se_gate", c10::DispatchKey::CPU, TORCH_FN(se_gate));
  m.impl("se_gate_backward", c10::DispatchKey::CPU, TORCH_FN(se_gate_backward));
}
