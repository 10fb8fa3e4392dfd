// The weight gradient of a 3 x 3 convolution (stride 1, padding 1) as matrix products over chunks of
// the batch, for the channels-last maps the training engine keeps.
//
// On a CPU with AVX2 and no AVX-512, oneDNN computes this gradient with its older direct kernel
// (`jit:avx2`, backward_weights), at about 60 % of the rate of a matrix product of the same size on
// the same threads, while the input's gradient and the forward pass run near that rate. Written as
// a product, the gradient is grad_w[o, (kh kw i)] = sum over positions p of grad_out[p, o] x cols[p,
// (kh kw i)], with cols the 3 x 3 neighbourhoods of the input (im2col). Here cols is made a few
// images at a time into a buffer that stays in cache (each neighbourhood row is three adjacent pixels
// of channels-last memory: one copy), and multiplied at once by sgemm.
//
// The batch is cut into a fixed number of parts, each summed into its own matrix and the parts added
// in order: the result does not depend on the number of threads (each product inside a part runs on
// one thread), and equals oneDNN's to float rounding, not bit for bit (tests/test_fused.py).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>

namespace {

using at::Tensor;

constexpr int64_t kParts = 8;            // partial sums per batch, whatever the number of threads
constexpr int64_t kChunkPositions = 1024;  // positions per im2col buffer: 1024 x 9 x 64 floats = 2.4 MB at most here

// cols[(n - n0) H W + h W + w][kh][kw][c] = x[n][h + kh - 1][w + kw - 1][c], zero outside the map.
void im2col(const float* x, float* cols, int64_t n0, int64_t n1, int64_t H, int64_t W, int64_t C) {
  const int64_t row = 9 * C;
  for (int64_t n = n0; n < n1; ++n) {
    const float* image = x + n * H * W * C;
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t w = 0; w < W; ++w) {
        float* dst = cols + (((n - n0) * H + h) * W + w) * row;
        for (int64_t kh = 0; kh < 3; ++kh) {
          float* d = dst + kh * 3 * C;
          const int64_t r = h + kh - 1;
          if (r < 0 || r >= H) {
            std::memset(d, 0, 3 * C * sizeof(float));
            continue;
          }
          const float* src = image + r * W * C;
          if (w >= 1 && w + 1 < W) {  // the three pixels are adjacent in memory
            std::memcpy(d, src + (w - 1) * C, 3 * C * sizeof(float));
            continue;
          }
          for (int64_t kw = 0; kw < 3; ++kw) {
            const int64_t q = w + kw - 1;
            if (q < 0 || q >= W)
              std::memset(d + kw * C, 0, C * sizeof(float));
            else
              std::memcpy(d + kw * C, src + q * C, C * sizeof(float));
          }
        }
      }
    }
  }
}

// grad_output: N x O x H x W, input: N x C x H x W (float32, any layout) -> O x C x 3 x 3 in channels-last memory.
Tensor conv3x3_weight_grad(const Tensor& grad_output, const Tensor& input) {
  TORCH_CHECK(input.device().is_cpu() && input.scalar_type() == at::kFloat && input.dim() == 4,
              "conv3x3_weight_grad: expected a float32 CPU input N x C x H x W, found ", input.scalar_type(), " ",
              input.sizes(), " on ", input.device());
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  TORCH_CHECK(grad_output.device().is_cpu() && grad_output.scalar_type() == at::kFloat && grad_output.dim() == 4 &&
                  grad_output.size(0) == N && grad_output.size(2) == H && grad_output.size(3) == W,
              "conv3x3_weight_grad: expected a float32 CPU gradient ", N, " x O x ", H, " x ", W, ", found ",
              grad_output.scalar_type(), " ", grad_output.sizes());
  const int64_t O = grad_output.size(1);
  const Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  // (N H W) x O rows: the gradient in channels-last memory, viewed without a copy
  const Tensor g = grad_output.contiguous(at::MemoryFormat::ChannelsLast).permute({0, 2, 3, 1}).reshape({N * H * W, O});
  const int64_t parts = std::max<int64_t>(1, std::min(kParts, N));
  const int64_t images_per_chunk = std::max<int64_t>(1, kChunkPositions / (H * W));
  Tensor partial = at::zeros({parts, O, 9 * C}, x.options());
  const float* px = x.data_ptr<float>();
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    Tensor cols = at::empty({images_per_chunk * H * W, 9 * C}, x.options());
    for (int64_t part = begin; part < end; ++part) {
      Tensor sum = partial[part];
      const int64_t n_end = N * (part + 1) / parts;
      for (int64_t n0 = N * part / parts; n0 < n_end; n0 += images_per_chunk) {
        const int64_t n1 = std::min(n_end, n0 + images_per_chunk), rows = (n1 - n0) * H * W;
        im2col(px, cols.data_ptr<float>(), n0, n1, H, W, C);
        sum.addmm_(g.narrow(0, n0 * H * W, rows).t(), cols.narrow(0, 0, rows));
      }
    }
  });
  Tensor total = partial[0].clone();  // its own memory: the partial sums are freed on return
  for (int64_t part = 1; part < parts; ++part) total.add_(partial[part]);
  // O x (kh kw C) is O x C x 3 x 3 in channels-last memory, the layout of the engine's weights
  return total.view({O, 3, 3, C}).permute({0, 3, 1, 2});
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(se_fused, m) {
  m.def("conv3x3_weight_grad(Tensor grad_output, Tensor input) -> Tensor");
  m.impl("conv3x3_weight_grad", c10::DispatchKey::CPU, TORCH_FN(conv3x3_weight_grad));
}
