// One conv block's BatchNorm (training) -> ReLU -> 2 x 2 max pool, and for a channel gate the mean of
// the ReLU output per sample and channel (the squeeze), in two passes over the conv's output forward
// and two backward.
//
// Module by module, PyTorch makes about nine passes over the full-resolution map: BN's statistics,
// BN's output (written), ReLU, the pool (which also writes a 64-bit index per output), and backward
// the pool's gradient (a zero map filled, then scattered), ReLU's, and BN's two. Here nothing of full
// resolution is written forward, and backward writes only the input's gradient: the pool's argmax and
// ReLU's masks are recomputed from the input, which is cheaper than storing and reading them back.
//
// Layout: channels last (N H W C), as the training engine keeps its activations, so the inner loops
// run over contiguous channels and vectorise. Statistics are summed per sample, then over the samples
// in order (in double): the same on any number of threads, and equal to PyTorch's to float rounding,
// not bit for bit (tests/test_fused.py).
// Only the ATen headers it needs and the operator registry (not <torch/extension.h>): it compiles in a
// quarter of the time, and the functions are called as torch.ops.se_fused.*.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>

#include <cmath>
#include <utility>
#include <vector>

namespace {

using at::Tensor;

void check_input(const Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4,
              "bn_relu_pool: expected a float32 CPU tensor N x C x H x W, found ", x.scalar_type(), " ",
              x.sizes(), " on ", x.device());
  TORCH_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0, "bn_relu_pool: expected even H and W, found ",
              x.sizes());
}

void check_channels(const char* what, const Tensor& t, int64_t C) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.numel() == C,
              "bn_relu_pool: expected ", what, " of ", C, " float32 values on the CPU, found ", t.scalar_type(), " ",
              t.sizes());
}

// Two per-channel sums over a batch, one partial sum per sample (filled by whichever thread takes the
// sample), combined in sample order: the result does not depend on the number of threads.
struct ChannelSums {
  int64_t channels;
  std::vector<double> parts;  // samples x 2 x channels
  ChannelSums(int64_t samples, int64_t c) : channels(c), parts(2 * c * samples, 0.0) {}
  double* first(int64_t n) { return parts.data() + 2 * channels * n; }
  double* second(int64_t n) { return first(n) + channels; }
  std::vector<double> total(int which) const {
    std::vector<double> out(channels, 0.0);
    for (size_t n = 0; n < parts.size() / (2 * channels); ++n)
      for (int64_t c = 0; c < channels; ++c) out[c] += parts[(2 * n + which) * channels + c];
    return out;
  }
};

}  // namespace

// One sample's windows: pooled = relu(max of the window's bn(x)), and with kSqueeze the sum of
// relu(bn(x)) per channel added to acc.
template <bool kSqueeze>
void forward_sample(int64_t n, const float* __restrict px, const float* __restrict a, const float* __restrict sh,
                    int64_t C, int64_t H, int64_t W, float* __restrict po, float* __restrict acc) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t oh = 0; oh < OH; ++oh) {
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t i0 = ((n * H + 2 * oh) * W + 2 * ow) * C;
      const float* __restrict x0 = px + i0;
      const float* __restrict x1 = x0 + C;
      const float* __restrict x2 = x0 + W * C;
      const float* __restrict x3 = x2 + C;
      float* __restrict out = po + ((n * OH + oh) * OW + ow) * C;
      // --8<-- [start:fused_window]
      // One 2 x 2 window, all channels (contiguous in memory: vector lanes).
      for (int64_t c = 0; c < C; ++c) {
        // BN, the batch statistics folded in: a = w / std, sh = b - mean a
        const float y0 = x0[c] * a[c] + sh[c], y1 = x1[c] * a[c] + sh[c];
        const float y2 = x2[c] * a[c] + sh[c], y3 = x3[c] * a[c] + sh[c];
        // ReLU after the max (max pooling commutes with a monotone map)
        const float m = std::max(std::max(y0, y1), std::max(y2, y3));
        out[c] = std::max(m, 0.0f);
        if (kSqueeze) {  // SE / ECA: sum of relu(y), divided by H W at the end
          acc[c] += (std::max(y0, 0.0f) + std::max(y1, 0.0f))
                  + (std::max(y2, 0.0f) + std::max(y3, 0.0f));
        }
      }
      // --8<-- [end:fused_window]
    }
  }
}

// Returns pooled = relu(maxpool(bn(x))) (channels last), the squeeze mean_hw relu(bn(x)) (N x C, or an
// empty tensor), and the batch mean and 1/std that backward needs. Updates the running statistics.
std::vector<Tensor> forward(const Tensor& input, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                            Tensor& running_var, double momentum, double eps, bool squeeze) {
  check_input(input);
  const Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), OH = H / 2, OW = W / 2;
  const int64_t count = N * H * W;
  const float* px = x.data_ptr<float>();

  TORCH_CHECK(count > 1 && C > 0, "bn_relu_pool: expected more than one value per channel, found ", x.sizes());
  check_channels("weight", weight, C);
  check_channels("bias", bias, C);
  check_channels("running_mean", running_mean, C);
  check_channels("running_var", running_var, C);

  ChannelSums sums(N, C);
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      double* s = sums.first(n);
      double* q = sums.second(n);
      for (int64_t r = n * H * W; r < (n + 1) * H * W; ++r) {
        const float* row = px + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const double v = row[c];
          s[c] += v;
          q[c] += v * v;
        }
      }
    }
  });
  const std::vector<double> s = sums.total(0), q = sums.total(1);

  Tensor mean = at::empty({C}, x.options()), invstd = at::empty({C}, x.options());
  std::vector<float> scale(C), shift(C);
  const Tensor weight_c = weight.contiguous(), bias_c = bias.contiguous();  // kept alive while read
  const float* w = weight_c.data_ptr<float>();
  const float* b = bias_c.data_ptr<float>();
  {  // called from an autograd.Function's forward: no graph records these updates
    float* pm = mean.data_ptr<float>();
    float* pi = invstd.data_ptr<float>();
    std::vector<float> unbiased(C);
    for (int64_t c = 0; c < C; ++c) {
      const double m = s[c] / count;
      const double var = std::max(q[c] / count - m * m, 0.0);
      pm[c] = static_cast<float>(m);
      pi[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
      unbiased[c] = static_cast<float>(var * count / std::max<int64_t>(count - 1, 1));
      scale[c] = w[c] * pi[c];
      shift[c] = b[c] - pm[c] * scale[c];
    }
    if (running_mean.defined()) {
      running_mean.mul_(1 - momentum).add_(mean, momentum);
      running_var.mul_(1 - momentum).add_(at::from_blob(unbiased.data(), {C}, x.options()), momentum);
    }
  }

  Tensor pooled = at::empty({N, C, OH, OW}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  Tensor z = squeeze ? at::empty({N, C}, x.options()) : at::empty({0}, x.options());
  float* po = pooled.data_ptr<float>();
  float* pz = squeeze ? z.data_ptr<float>() : nullptr;
  const float* a = scale.data();
  const float* sh = shift.data();
  const float per_value = 1.0f / static_cast<float>(H * W);
  // One sample per task: its squeeze sums stay in one thread.
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(C);
    for (int64_t n = begin; n < end; ++n) {
      if (pz) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        forward_sample<true>(n, px, a, sh, C, H, W, po, acc.data());
        for (int64_t c = 0; c < C; ++c) pz[n * C + c] = acc[c] * per_value;
      } else {
        forward_sample<false>(n, px, a, sh, C, H, W, po, nullptr);
      }
    }
  });
  return {pooled, z, mean, invstd};
}

// Both backward passes walk the windows alike. dy, the gradient at a value y = bn(x) of the block's
// input, is zero where y <= 0 (ReLU); elsewhere it is the squeeze's share of its channel's gradient
// (grad_z / (H W)) plus, at the first maximum of its window (PyTorch's choice), the pooled gradient.
// Pass 1 sums dy and dy * xhat per channel (xhat = (x - mean) / std); pass 2 writes BN's input
// gradient (dy - mean(dy) - xhat mean(dy xhat)) * weight / std.
template <bool kWrite>
void backward_pass(int64_t n, const float* __restrict px, const float* __restrict pgp,
                   const float* __restrict spread, const float* __restrict a, const float* __restrict sh,
                   const float* __restrict mean, const float* __restrict invstd, const float* __restrict mean_dy,
                   const float* __restrict mean_dy_xhat, int64_t C, int64_t H, int64_t W,
                   float* __restrict sdy, float* __restrict sdx, float* __restrict pdx) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t oh = 0; oh < OH; ++oh) {
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t i0 = ((n * H + 2 * oh) * W + 2 * ow) * C, i1 = i0 + C, i2 = i0 + W * C, i3 = i2 + C;
      const float* __restrict g = pgp + ((n * OH + oh) * OW + ow) * C;
      const float* __restrict x0 = px + i0;
      const float* __restrict x1 = px + i1;
      const float* __restrict x2 = px + i2;
      const float* __restrict x3 = px + i3;
      for (int64_t c = 0; c < C; ++c) {
        const float y0 = x0[c] * a[c] + sh[c], y1 = x1[c] * a[c] + sh[c];
        const float y2 = x2[c] * a[c] + sh[c], y3 = x3[c] * a[c] + sh[c];
        const float m = std::max(std::max(y0, y1), std::max(y2, y3));
        // 1 at the window's first maximum, else 0 (selects written as arithmetic: they vectorise).
        const float e0 = y0 == m ? 1.0f : 0.0f;
        const float e1 = y1 == m ? 1.0f - e0 : 0.0f;
        const float e2 = y2 == m ? 1.0f - e0 - e1 : 0.0f;
        const float e3 = 1.0f - e0 - e1 - e2;
        const float sp = spread[c], gc = g[c];
        const float d0 = y0 > 0.0f ? sp + e0 * gc : 0.0f, d1 = y1 > 0.0f ? sp + e1 * gc : 0.0f;
        const float d2 = y2 > 0.0f ? sp + e2 * gc : 0.0f, d3 = y3 > 0.0f ? sp + e3 * gc : 0.0f;
        const float h0 = (x0[c] - mean[c]) * invstd[c], h1 = (x1[c] - mean[c]) * invstd[c];
        const float h2 = (x2[c] - mean[c]) * invstd[c], h3 = (x3[c] - mean[c]) * invstd[c];
        if (kWrite) {
          pdx[i0 + c] = (d0 - mean_dy[c] - h0 * mean_dy_xhat[c]) * a[c];
          pdx[i1 + c] = (d1 - mean_dy[c] - h1 * mean_dy_xhat[c]) * a[c];
          pdx[i2 + c] = (d2 - mean_dy[c] - h2 * mean_dy_xhat[c]) * a[c];
          pdx[i3 + c] = (d3 - mean_dy[c] - h3 * mean_dy_xhat[c]) * a[c];
        } else {
          sdy[c] += (d0 + d1) + (d2 + d3);
          sdx[c] += (d0 * h0 + d1 * h1) + (d2 * h2 + d3 * h3);
        }
      }
    }
  }
}

// Gradients of forward's outputs -> gradients of x, weight and bias (BN's training backward).
std::vector<Tensor> backward(const Tensor& grad_pooled, const Tensor& grad_z, const Tensor& input,
                             const Tensor& weight, const Tensor& bias, const Tensor& mean_t, const Tensor& invstd_t) {
  check_input(input);
  const Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const Tensor gp = grad_pooled.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t count = N * H * W;
  const float per_value = 1.0f / static_cast<float>(H * W);
  // The squeeze's gradient, spread over the H W values it averaged (zero without a squeeze).
  const Tensor spread = grad_z.defined() && grad_z.numel() > 0 ? grad_z.mul(per_value).contiguous()
                                                               : at::zeros({N, C}, x.options());
  const float* px = x.data_ptr<float>();
  const float* pgp = gp.data_ptr<float>();
  const float* psp = spread.data_ptr<float>();
  TORCH_CHECK(count > 1 && C > 0, "bn_relu_pool_backward: expected more than one value per channel, found ",
              x.sizes());
  TORCH_CHECK(gp.sizes() == at::IntArrayRef({N, C, H / 2, W / 2}), "bn_relu_pool_backward: expected grad_pooled of ",
              "shape [", N, ", ", C, ", ", H / 2, ", ", W / 2, "], found ", gp.sizes());
  TORCH_CHECK(spread.sizes() == at::IntArrayRef({N, C}), "bn_relu_pool_backward: expected grad_z of shape [", N, ", ",
              C, "], found ", spread.sizes());
  for (const auto& [what, t] : {std::pair<const char*, const Tensor&>{"weight", weight}, {"bias", bias},
                                {"mean", mean_t}, {"invstd", invstd_t}})
    check_channels(what, t, C);
  const Tensor weight_c = weight.contiguous(), bias_c = bias.contiguous();  // kept alive while read
  const float* mean = mean_t.data_ptr<float>();
  const float* invstd = invstd_t.data_ptr<float>();
  const float* w = weight_c.data_ptr<float>();
  const float* b = bias_c.data_ptr<float>();
  std::vector<float> a(C), sh(C);
  for (int64_t c = 0; c < C; ++c) {
    a[c] = w[c] * invstd[c];
    sh[c] = b[c] - mean[c] * a[c];
  }

  ChannelSums sums(N, C);
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> fdy(C), fdx(C);  // one sample's sums in float (vector registers), then in double
    for (int64_t n = begin; n < end; ++n) {
      std::fill(fdy.begin(), fdy.end(), 0.0f);
      std::fill(fdx.begin(), fdx.end(), 0.0f);
      backward_pass<false>(n, px, pgp, psp + n * C, a.data(), sh.data(), mean, invstd, nullptr, nullptr, C, H, W,
                           fdy.data(), fdx.data(), nullptr);
      double* sdy = sums.first(n);
      double* sdx = sums.second(n);
      for (int64_t c = 0; c < C; ++c) {
        sdy[c] = fdy[c];
        sdx[c] = fdx[c];
      }
    }
  });
  const std::vector<double> sum_dy = sums.total(0), sum_dy_xhat = sums.total(1);

  Tensor grad_x = at::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  Tensor grad_w = at::empty({C}, x.options()), grad_b = at::empty({C}, x.options());
  std::vector<float> mean_dy(C), mean_dy_xhat(C);
  for (int64_t c = 0; c < C; ++c) {
    mean_dy[c] = static_cast<float>(sum_dy[c] / count);
    mean_dy_xhat[c] = static_cast<float>(sum_dy_xhat[c] / count);
    grad_w.data_ptr<float>()[c] = static_cast<float>(sum_dy_xhat[c]);
    grad_b.data_ptr<float>()[c] = static_cast<float>(sum_dy[c]);
  }
  float* pdx = grad_x.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      backward_pass<true>(n, px, pgp, psp + n * C, a.data(), sh.data(), mean, invstd, mean_dy.data(),
                          mean_dy_xhat.data(), C, H, W, nullptr, nullptr, pdx);
  });
  return {grad_x, grad_w, grad_b};
}

TORCH_LIBRARY(se_fused, m) {
  m.def("bn_relu_pool(Tensor input, Tensor weight, Tensor bias, Tensor(a!) running_mean, Tensor(b!) running_var, "
        "float momentum, float eps, bool squeeze) -> Tensor[]");
  m.def("bn_relu_pool_backward(Tensor grad_pooled, Tensor grad_z, Tensor input, Tensor weight, Tensor bias, "
        "Tensor mean, Tensor invstd) -> Tensor[]");
  m.impl("bn_relu_pool", c10::DispatchKey::CPU, TORCH_FN(forward));
  m.impl("bn_relu_pool_backward", c10::DispatchKey::CPU, TORCH_FN(backward));
}
