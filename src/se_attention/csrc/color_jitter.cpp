// torchvision's ColorJitter on a float batch, each sample with its own factors and its own order of
// the four operations, in one pass per operation over that sample (which stays in cache).
//
// augment.color_jitter computes the same maths with whole-batch tensor operations: per position a
// grey image, its mean, two blends and a clamp over the whole batch, plus the hue of the samples
// that draw it there, about 25 passes over the batch. Per sample it is 3 x 32 x 32 values: here
// each operation is one loop over them. The contrast mean is summed in another order than
// PyTorch's, so results agree to float rounding (tests/test_fused.py).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

namespace {

using at::Tensor;

constexpr int64_t kBrightness = 0, kContrast = 1, kSaturation = 2, kHue = 3;  // ColorJitter's order

inline float grey(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }  // ITU-R 601-2

// x <- clamp(f x + (1 - f) base), base a constant (brightness: 0, contrast: the grey mean) or, for
// saturation, the grey value of each pixel.
void blend(float* __restrict r, float* __restrict g, float* __restrict b, int64_t hw, float f, int64_t op) {
  const float rest = 1.0f - f;
  float base = 0.0f;
  if (op == kContrast) {
    double sum = 0.0;
    for (int64_t i = 0; i < hw; ++i) sum += grey(r[i], g[i], b[i]);
    base = rest * static_cast<float>(sum / hw);
  }
  for (int64_t i = 0; i < hw; ++i) {
    const float add = op == kSaturation ? rest * grey(r[i], g[i], b[i]) : base;
    r[i] = std::clamp(add + f * r[i], 0.0f, 1.0f);
    g[i] = std::clamp(add + f * g[i], 0.0f, 1.0f);
    b[i] = std::clamp(add + f * b[i], 0.0f, 1.0f);
  }
}

// Hue rotated by `shift` turns, in the closed form of augment.adjust_hue: V and chroma stay, and each
// channel is max - C clamp(min(k, 4 - k), 0, 1) with k = (n_c + 6 h') mod 6, n = 5, 3, 1 for R, G, B.
void hue(float* __restrict r, float* __restrict g, float* __restrict b, int64_t hw, float shift) {
  const float turn = 6.0f * shift;
  const float nr = 5.0f + turn, ng = 3.0f + turn, nb = 1.0f + turn;
  for (int64_t i = 0; i < hw; ++i) {
    const float maxc = std::max(std::max(r[i], g[i]), b[i]);
    const float chroma = maxc - std::min(std::min(r[i], g[i]), b[i]);
    const float inv = 1.0f / (chroma > 0.0f ? chroma : 1.0f);
    const float h6 = maxc == r[i] ? (g[i] - b[i]) * inv
                   : maxc == g[i] ? (b[i] - r[i]) * inv + 2.0f
                                  : (r[i] - g[i]) * inv + 4.0f;
    auto channel = [&](float n) {
      float k = h6 + n;
      k = k - 6.0f * std::floor(k / 6.0f);
      return maxc - chroma * std::clamp(std::min(k, 4.0f - k), 0.0f, 1.0f);
    };
    const float rr = channel(nr), gg = channel(ng), bb = channel(nb);
    r[i] = rr;
    g[i] = gg;
    b[i] = bb;
  }
}

// x: N x 3 x H x W float in [0, 1]; factors: N x 4 (brightness, contrast, saturation, hue shift);
// order: N x 4, each row a permutation of 0..3 (the operations in the order the sample applies them).
Tensor color_jitter(const Tensor& input, const Tensor& factors_in, const Tensor& order_in) {
  TORCH_CHECK(input.device().is_cpu() && input.scalar_type() == at::kFloat && input.dim() == 4 && input.size(1) == 3,
              "color_jitter: expected a float32 CPU batch N x 3 x H x W, found ", input.scalar_type(), " ",
              input.sizes());
  const int64_t N = input.size(0), hw = input.size(2) * input.size(3);
  TORCH_CHECK(factors_in.sizes() == at::IntArrayRef({N, 4}) && order_in.sizes() == at::IntArrayRef({N, 4}),
              "color_jitter: expected factors and order of shape [", N, ", 4], found ", factors_in.sizes(), " and ",
              order_in.sizes());
  const Tensor factors = factors_in.to(at::kFloat).contiguous();
  const Tensor order = order_in.to(at::kLong).contiguous();
  Tensor out = input.contiguous().clone();
  float* px = out.data_ptr<float>();
  const float* pf = factors.data_ptr<float>();
  const int64_t* po = order.data_ptr<int64_t>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      float* r = px + n * 3 * hw;
      for (int64_t position = 0; position < 4; ++position) {
        const int64_t op = po[n * 4 + position];
        TORCH_CHECK(op >= 0 && op < 4, "color_jitter: order holds ", op, ", expected 0 to 3");
        if (op == kHue)
          hue(r, r + hw, r + 2 * hw, hw, pf[n * 4 + op]);
        else
          blend(r, r + hw, r + 2 * hw, hw, pf[n * 4 + op], op);
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(se_fused, m) {
  m.def("color_jitter(Tensor input, Tensor factors, Tensor order) -> Tensor");
  m.impl("color_jitter", c10::DispatchKey::CPU, TORCH_FN(color_jitter));
}
