// The batch augmentation's CPU kernels: torchvision's ColorJitter on a float batch (color_jitter), and
// the whole augmentation of a batch from the uint8 set (augment), each sample in one buffer that stays
// in cache.
//
// color_jitter: each sample with its own factors and its own order of
// the four operations, in one pass per operation over that sample (which stays in cache).
//
// augment.color_jitter computes the same maths with whole-batch tensor operations: per position a
// grey image, its mean, two blends and a clamp over the whole batch, plus the hue of the samples
// that draw it there, about 25 passes over the batch. Per sample it is 3 x 32 x 32 values: here
// each operation is one loop over them. The contrast mean is summed in another order than
// PyTorch's, so results agree to float rounding (tests/test_fused.py).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

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

// One image (3 planes of hw values) through the four operations in the sample's order.
void jitter(float* r, int64_t hw, const float* factors, const int64_t* order) {
  for (int64_t position = 0; position < 4; ++position) {
    const int64_t op = order[position];
    TORCH_CHECK(op >= 0 && op < 4, "color_jitter: order holds ", op, ", expected 0 to 3");
    if (op == kHue)
      hue(r, r + hw, r + 2 * hw, hw, factors[op]);
    else
      blend(r, r + hw, r + 2 * hw, hw, factors[op], op);
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
    for (int64_t n = begin; n < end; ++n) jitter(px + n * 3 * hw, hw, pf + n * 4, po + n * 4);
  });
  return out;
}

// grid_sample's unnormalisation without align_corners, (g + 1) size/2 - 0.5, rounded to the nearest
// pixel (ties to even) as its nearest mode does. Each step is one float32 operation, as in PyTorch's
// kernel: the empty asm keeps the compiler from fusing the product and the subtraction into one
// multiply-add, which rounds once and could move a pixel that lies on an edge.
inline int64_t nearest(float g, float half) {
  float scaled = (g + 1.0f) * half;
  asm volatile("" : "+m"(scaled));
  return static_cast<int64_t>(std::nearbyint(scaled - 0.5f));
}

// The pixel (y W + x) that each output pixel takes from a grid N x H x W x 2 (any layout), -1 where it
// falls outside the image (the zero fill); for an empty grid, each pixel itself.
Tensor nearest_source(const Tensor& grid_in, int64_t N, int64_t H, int64_t W) {
  Tensor source = at::empty({N, H, W}, grid_in.options().dtype(at::kLong));
  int64_t* ps = source.data_ptr<int64_t>();
  if (grid_in.numel() == 0) {
    for (int64_t i = 0; i < N * H * W; ++i) ps[i] = i % (H * W);
    return source;
  }
  const Tensor grid = grid_in.to(at::kFloat);
  const float* pg = grid.data_ptr<float>();
  const int64_t s0 = grid.stride(0), s1 = grid.stride(1), s2 = grid.stride(2), s3 = grid.stride(3);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const float* at = pg + n * s0 + y * s1 + x * s2;
        const int64_t ix = nearest(at[0], static_cast<float>(W) / 2), iy = nearest(at[s3], static_cast<float>(H) / 2);
        ps[(n * H + y) * W + x] = ix >= 0 && ix < W && iy >= 0 && iy < H ? iy * W + ix : -1;
      }
  return source;
}

// The whole of augment.augment_batch and normalize for one batch, one sample at a time in a buffer that
// stays in cache: the sample's pixels are read from the uint8 set through its crop window and flip,
// jittered as color_jitter does, and written normalised and rotated (a nearest-neighbour gather),
// channels last. Module by module this is about a dozen passes over the batch (the index copy, the
// padded copy and its gather, the flip's select, the float conversion, the rotation's grid sample,
// the normalisation and the change of layout). The random numbers are drawn in Python in augment's
// order (fused.augmented_batch); the rotation arrives as augment's own sampling grid, rounded here as
// grid_sample rounds it, so the batch takes the same pixels and only the jitter's rounding differs.
//
// images: M x 3 x H x W uint8, any layout; index: N samples of it; offsets: N x 2 (dy, dx) of the
// crop window in the image zero-padded by `padding`; flip: N; factors and order: as color_jitter;
// grid: N x H x W x 2, the rotation's sampling grid (x, y in [-1, 1], align_corners false), or empty
// for no rotation; mean, std: 3. Returns N x 3 x H x W float32 in channels-last memory.
Tensor augment(const Tensor& images, const Tensor& index_in, const Tensor& offsets_in, int64_t padding,
               const Tensor& flip_in, const Tensor& factors_in, const Tensor& order_in, const Tensor& grid_in,
               const Tensor& mean_in, const Tensor& std_in) {
  TORCH_CHECK(images.device().is_cpu() && images.scalar_type() == at::kByte && images.dim() == 4 && images.size(1) == 3,
              "augment: expected uint8 CPU images M x 3 x H x W, found ", images.scalar_type(), " ", images.sizes(),
              " on ", images.device());
  const int64_t M = images.size(0), H = images.size(2), W = images.size(3), hw = H * W, N = index_in.numel();
  auto expect = [&](const Tensor& t, at::IntArrayRef shape, const char* what) {
    TORCH_CHECK(t.device().is_cpu() && t.sizes() == shape, "augment: expected ", what, " of shape ", shape,
                " on the CPU, found ", t.sizes(), " on ", t.device());
  };
  expect(offsets_in, {N, 2}, "offsets");
  expect(flip_in, {N}, "flip");
  expect(factors_in, {N, 4}, "factors");
  expect(order_in, {N, 4}, "order");
  if (grid_in.numel()) expect(grid_in, {N, H, W, 2}, "grid");
  expect(mean_in, {3}, "mean");
  expect(std_in, {3}, "std");
  const Tensor index = index_in.to(at::kLong).contiguous(), offsets = offsets_in.to(at::kLong).contiguous();
  const Tensor flip = flip_in.to(at::kBool).contiguous(), factors = factors_in.to(at::kFloat).contiguous();
  const Tensor order = order_in.to(at::kLong).contiguous(), source = nearest_source(grid_in, N, H, W);
  const Tensor mean = mean_in.to(at::kFloat).contiguous(), std = std_in.to(at::kFloat).contiguous();
  const int64_t* pi = index.data_ptr<int64_t>();
  for (int64_t n = 0; n < N; ++n)
    TORCH_CHECK(pi[n] >= 0 && pi[n] < M, "augment: index holds ", pi[n], ", expected 0 to ", M - 1);
  Tensor out = at::empty({N, 3, H, W}, images.options().dtype(at::kFloat), at::MemoryFormat::ChannelsLast);
  const uint8_t* pimg = images.data_ptr<uint8_t>();
  const int64_t sn = images.stride(0), sc = images.stride(1), sh = images.stride(2), sw = images.stride(3);
  const int64_t *po = offsets.data_ptr<int64_t>(), *pord = order.data_ptr<int64_t>(), *ps = source.data_ptr<int64_t>();
  const bool* pflip = flip.data_ptr<bool>();
  const float *pf = factors.data_ptr<float>(), *pm = mean.data_ptr<float>(), *pstd = std.data_ptr<float>();
  float* pout = out.data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> buffer(3 * hw);
    for (int64_t n = begin; n < end; ++n) {
      const uint8_t* image = pimg + pi[n] * sn;
      const int64_t dy = po[2 * n] - padding, dx = po[2 * n + 1] - padding;
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            // crop, then flip: output (y, x) shows the window's column W - 1 - x
            const int64_t iy = y + dy, ix = (pflip[n] ? W - 1 - x : x) + dx;
            const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
            buffer[c * hw + y * W + x] = inside ? static_cast<float>(image[c * sc + iy * sh + ix * sw]) / 255.0f : 0.0f;
          }
      jitter(buffer.data(), hw, pf + n * 4, pord + n * 4);
      const int64_t* src = ps + n * hw;
      float* o = pout + n * hw * 3;  // channels last: pixel p of sample n at o[3 p + c]
      for (int64_t p = 0; p < hw; ++p) {
        for (int64_t c = 0; c < 3; ++c)
          o[3 * p + c] = ((src[p] < 0 ? 0.0f : buffer[c * hw + src[p]]) - pm[c]) / pstd[c];
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(se_fused, m) {
  m.def("color_jitter(Tensor input, Tensor factors, Tensor order) -> Tensor");
  m.impl("color_jitter", c10::DispatchKey::CPU, TORCH_FN(color_jitter));
  m.def("augment(Tensor images, Tensor index, Tensor offsets, int padding, Tensor flip, Tensor factors, Tensor order, "
        "Tensor grid, Tensor mean, Tensor std) -> Tensor");
  m.impl("augment", c10::DispatchKey::CPU, TORCH_FN(augment));
}
