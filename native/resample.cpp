// Pillow's resampling passes for 8-bit images (Pillow 9.4, libImaging/Resample.c), run off the
// main thread. The weights (Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`) are computed
// in TypeScript, src/data/image/resize.ts; this file only applies them, with Pillow's integer arithmetic:
// 22 fraction bits, sum + 2^21, arithmetic shift right, clip to 0..255, after each pass.
// No torch headers here: it is plain C++ compiled into the same addon.
#pragma GCC optimize("O3")  // GCC 12's -O2 does not vectorise the accumulation loops (5-10x slower)
#define NAPI_VERSION 8
#include <napi.h>

#include <algorithm>
#include <memory>
#include <cstdint>
#include <string>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// AVX2 multiplies 8 int32 lanes at once; the default clone runs on any x86-64.
#define UNET_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define UNET_SIMD_CLONES
#endif

namespace unet_resample {

constexpr int kPrecisionBits = 22;

// One output index: input rows start[j] .. start[j] + count[j] - 1, weights[j * ksize + t].
struct Taps {
  const int32_t* start;
  const int32_t* count;
  const int32_t* weights;
  int ksize;
  int out;
};

// [in][inner] -> [taps.out][inner]: out[j][i] = clip8((2^21 + sum_t w[j][t] * in[start[j] + t][i]) >> 22).
// `inner` is long (a row, or a strip of columns), so the i loops vectorise.
UNET_SIMD_CLONES
void Pass(const uint8_t* __restrict in, uint8_t* __restrict out, int inner, const Taps& taps, int32_t* __restrict acc) {
  for (int j = 0; j < taps.out; j++) {
    for (int i = 0; i < inner; i++) acc[i] = 1 << (kPrecisionBits - 1);
    const int32_t* w = taps.weights + static_cast<size_t>(j) * taps.ksize;
    for (int t = 0; t < taps.count[j]; t++) {
      const int32_t wt = w[t];
      const uint8_t* row = in + static_cast<size_t>(taps.start[j] + t) * inner;
      for (int i = 0; i < inner; i++) acc[i] += row[i] * wt;
    }
    uint8_t* o = out + static_cast<size_t>(j) * inner;
    for (int i = 0; i < inner; i++) {
      const int v = acc[i] >> kPrecisionBits;
      o[i] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

// Horizontal pass of [height][width][C] -> [height][taps.out][C]. Strips of rows are transposed
// so that the same vectorised Pass runs along the columns (2x faster than Pillow's scalar loop).
template <int C>
void Horizontal(const uint8_t* in, uint8_t* out, int width, int height, const Taps& taps) {
  constexpr int kStrip = 16;
  const int newWidth = taps.out;
  std::vector<uint8_t> colsIn(static_cast<size_t>(width) * kStrip * C), colsOut(static_cast<size_t>(newWidth) * kStrip * C);
  std::vector<int32_t> acc(kStrip * C);
  for (int y0 = 0; y0 < height; y0 += kStrip) {
    const int rows = std::min(kStrip, height - y0);
    const int inner = rows * C;
    for (int y = 0; y < rows; y++) {
      const uint8_t* s = in + static_cast<size_t>(y0 + y) * width * C;
      for (int x = 0; x < width; x++)
        for (int c = 0; c < C; c++) colsIn[static_cast<size_t>(x) * inner + y * C + c] = s[x * C + c];
    }
    Pass(colsIn.data(), colsOut.data(), inner, taps, acc.data());
    for (int y = 0; y < rows; y++) {
      uint8_t* d = out + static_cast<size_t>(y0 + y) * newWidth * C;
      for (int x = 0; x < newWidth; x++)
        for (int c = 0; c < C; c++) d[x * C + c] = colsOut[static_cast<size_t>(x) * inner + y * C + c];
    }
  }
}

class Resample8 : public Napi::AsyncWorker {
 public:
  Resample8(Napi::Env env, const Napi::CallbackInfo& info) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {
    src_ = Bytes(info[0], "src");
    width_ = Int(info[1], "width");
    height_ = Int(info[2], "height");
    channels_ = Int(info[3], "channels");
    dst_ = Bytes(info[4], "dst");
    if (channels_ != 1 && channels_ != 3) Fail("channels must be 1 or 3");
    const int newWidth = Int(info[5], "newWidth"), newHeight = Int(info[6], "newHeight");
    if (src_.size != Size(width_, height_)) Fail("src has the wrong length");
    if (dst_.size != Size(newWidth, newHeight)) Fail("dst has the wrong length");
    horizontal_ = !info[7].IsNull();
    if (horizontal_) h_ = ReadTaps(info, 7, width_, newWidth);
    else if (newWidth != width_) Fail("horizontal taps missing");
    vertical_ = !info[10].IsNull();
    if (vertical_) v_ = ReadTaps(info, 10, height_, newHeight);
    else if (newHeight != height_) Fail("vertical taps missing");
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const int newWidth = horizontal_ ? h_.out : width_;
    std::vector<uint8_t> tmp;
    const uint8_t* rows = src_.data;
    if (horizontal_) {
      uint8_t* dst = vertical_ ? (tmp.resize(static_cast<size_t>(newWidth) * height_ * channels_), tmp.data()) : dst_.data;
      if (channels_ == 1) Horizontal<1>(src_.data, dst, width_, height_, h_);
      else Horizontal<3>(src_.data, dst, width_, height_, h_);
      rows = dst;
    }
    if (vertical_) {
      std::vector<int32_t> acc(static_cast<size_t>(newWidth) * channels_);
      Pass(rows, dst_.data, newWidth * channels_, v_, acc.data());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  struct Span {
    uint8_t* data = nullptr;
    size_t size = 0;
  };

  [[noreturn]] void Fail(const std::string& m) { throw Napi::TypeError::New(Env(), "resample8: " + m); }
  size_t Size(int w, int h) const { return static_cast<size_t>(w) * h * channels_; }

  int Int(const Napi::Value& v, const char* what) {
    if (!v.IsNumber()) Fail(std::string(what) + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 1 && d <= 1 << 30) || d != static_cast<int>(d)) Fail(std::string(what) + " must be a positive integer");
    return static_cast<int>(d);
  }

  // The array stays referenced (so alive) until the worker is deleted, on the main thread.
  Napi::TypedArray Keep(const Napi::Value& v, napi_typedarray_type type, const char* what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) Fail(std::string(what) + " has the wrong array type");
    keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    return v.As<Napi::TypedArray>();
  }
  Span Bytes(const Napi::Value& v, const char* what) {
    Napi::Uint8Array a = Keep(v, napi_uint8_array, what).As<Napi::Uint8Array>();
    return {a.Data(), a.ElementLength()};
  }
  const int32_t* Ints(const Napi::Value& v, size_t n, const char* what) {
    Napi::Int32Array a = Keep(v, napi_int32_array, what).As<Napi::Int32Array>();
    if (a.ElementLength() < n) Fail(std::string(what) + " is too short");
    return a.Data();
  }
  // start, count, weights at info[k..k+2]; every tap must lie inside the input.
  Taps ReadTaps(const Napi::CallbackInfo& info, int k, int inSize, int outSize) {
    Taps t{};
    t.out = outSize;
    t.start = Ints(info[k], outSize, "start");
    t.count = Ints(info[k + 1], outSize, "count");
    const size_t nWeights = info[k + 2].IsTypedArray() ? info[k + 2].As<Napi::TypedArray>().ElementLength() : 0;
    if (nWeights % outSize != 0) Fail("weights length is not a multiple of the output size");
    t.ksize = static_cast<int>(nWeights / outSize);
    t.weights = Ints(info[k + 2], nWeights, "weights");
    for (int j = 0; j < outSize; j++) {
      if (t.start[j] < 0 || t.count[j] < 0 || t.count[j] > t.ksize || t.start[j] + t.count[j] > inSize) Fail("taps out of range");
    }
    return t;
  }

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> keep_;
  Span src_, dst_;
  int width_ = 0, height_ = 0, channels_ = 0;
  bool horizontal_ = false, vertical_ = false;
  Taps h_{}, v_{};
};

}  // namespace unet_resample

// resample8(src: Uint8Array, width, height, channels, dst: Uint8Array, newWidth, newHeight,
//           hStart, hCount, hWeights, vStart, vCount, vWeights): Promise<void>
// Taps are Int32Arrays (null to skip that pass); the two passes run on the libuv thread pool.
Napi::Value resample8(const Napi::CallbackInfo& info) {
  auto worker = std::make_unique<unet_resample::Resample8>(info.Env(), info);  // freed if the arguments are refused
  Napi::Promise p = worker->Promise();
  worker.release()->Queue();  // the worker deletes itself when done
  return p;
}
