// unet-ts native addon: a thin Node-API layer over libtorch (ATen).
// Tensors, ops, autograd, autocast and AMP primitives only; every piece of training logic lives in
// TypeScript (src/engine is the only importer). One source compiles against libtorch 1.13 and 2.x.
#define NAPI_VERSION 8
#include "addon.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <malloc.h>
#include <unistd.h>
#include <algorithm>
#include <mutex>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define UNET_AUTOCAST_V2 1
#endif

// native/resample.cpp (Pillow's 8-bit resampling, no torch).
Napi::Value resample8(const Napi::CallbackInfo& info);
// native/jpeg.cpp (JPEG decoding with the system libjpeg-turbo, as Pillow does; no torch).
Napi::Value decodeJpeg(const Napi::CallbackInfo& info);

namespace {

std::atomic<int64_t> g_live_tensors{0};
std::atomic<int64_t> g_live_bytes{0};

int64_t storage_bytes(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

// ---------------------------------------------------------------------------------------------
// Tensor handle. Holds an at::Tensor by value (a refcount). dispose() drops this handle's
// reference; the GC finalizer (destructor) is only the safety net. External memory is reported to
// V8 so that forgotten tensors still create GC pressure.
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::FunctionReference ctor;
  at::Tensor t;
  int64_t accounted = 0;

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "TensorHandle", {});
    ctor = Napi::Persistent(f);
    ctor.SuppressDestruct();
    exports.Set("TensorHandle", f);
  }
  explicit TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}
  ~TensorHandle() { Release(nullptr); }

  void Set(Napi::Env env, at::Tensor v) {
    t = std::move(v);
    accounted = storage_bytes(t);
    g_live_tensors++;
    g_live_bytes += accounted;
    if (accounted > 0) Napi::MemoryManagement::AdjustExternalMemory(env, accounted);
  }
  void Release(napi_env env) {
    if (!t.defined()) return;
    g_live_tensors--;
    g_live_bytes -= accounted;
    if (env != nullptr && accounted > 0) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env), -accounted);
    accounted = 0;
    t = at::Tensor();
  }
};
Napi::FunctionReference TensorHandle::ctor;

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  Napi::Object o = TensorHandle::ctor.New({});
  TensorHandle::Unwrap(o)->Set(env, std::move(t));
  return o;
}

[[noreturn]] void TypeErr(Napi::Env env, const std::string& m) { throw Napi::TypeError::New(env, m); }

TensorHandle* Handle(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(TensorHandle::ctor.Value()))
    TypeErr(env, "expected a Tensor");
  return TensorHandle::Unwrap(v.As<Napi::Object>());
}

at::Tensor& T(const Napi::Value& v) {
  TensorHandle* h = Handle(v);
  if (!h->t.defined()) TypeErr(v.Env(), "tensor was disposed and can no longer be used");
  return h->t;
}

c10::optional<at::Tensor> OptT(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  return T(v);
}

bool IsTensor(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(TensorHandle::ctor.Value());
}

int64_t Int(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) TypeErr(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) TypeErr(v.Env(), std::string(what) + " must be an integer");
  return static_cast<int64_t>(d);
}
double Num(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) TypeErr(v.Env(), std::string(what) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
bool Bool(const Napi::Value& v) { return v.ToBoolean().Value(); }
std::string Str(const Napi::Value& v, const char* what) {
  if (!v.IsString()) TypeErr(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Ints(const Napi::Value& v, const char* what) {
  if (v.IsNumber()) return {Int(v, what)};
  if (!v.IsArray()) TypeErr(v.Env(), std::string(what) + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out[i] = Int(a.Get(i), what);
  return out;
}

std::vector<at::Tensor> Tensors(const Napi::Value& v) {
  if (!v.IsArray()) TypeErr(v.Env(), "expected an array of tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(T(a.Get(i)));
  return out;
}

Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array a = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) a.Set(static_cast<uint32_t>(i), Wrap(env, ts[i]));
  return a;
}

at::ScalarType DType(const Napi::Value& v) {
  std::string s = Str(v, "dtype");
  if (s == "float32") return at::kFloat;
  if (s == "float64") return at::kDouble;
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  if (s == "int16") return at::kShort;
  if (s == "int8") return at::kChar;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  TypeErr(v.Env(), "unknown dtype '" + s + "'");
}
c10::optional<at::ScalarType> OptDType(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  return DType(v);
}
const char* DTypeName(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "unsupported";
  }
}

at::Device Dev(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return at::Device(at::kCPU);
  std::string s = Str(v, "device");
  // Only cpu and cuda[:N]: libtorch also parses meta, mps, xla, ... whose tensors have no host
  // memory behind them (a later data() would read a null pointer).
  bool cuda = s == "cuda" || (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9 && s.find_first_not_of("0123456789", 5) == std::string::npos);
  if (s != "cpu" && !cuda) TypeErr(v.Env(), "unknown device '" + s + "': use cpu, cuda or cuda:N");
  if (cuda && !at::detail::getCUDAHooks().hasCUDA())
    throw Napi::Error::New(v.Env(), "device '" + s + "' requested but CUDA is not available (this libtorch build or machine has no CUDA); use --device cpu");
  return at::Device(s);
}

at::TensorOptions Opts(const Napi::Value& dtype, const Napi::Value& device) {
  at::TensorOptions o;
  o = o.dtype(dtype.IsUndefined() || dtype.IsNull() ? at::kFloat : DType(dtype));
  return o.device(Dev(device));
}

at::Scalar Scal(const Napi::Value& v) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsNumber()) {
    // JS has one number type: integral values become int64 scalars so in-place ops on integer
    // tensors work (a float scalar cannot be added in place to an int64 tensor).
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  TypeErr(v.Env(), "expected a number");
}

at::MemoryFormat Fmt(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return at::MemoryFormat::Contiguous;
  std::string s = Str(v, "memory format");
  if (s == "channels_last") return at::MemoryFormat::ChannelsLast;
  if (s == "contiguous") return at::MemoryFormat::Contiguous;
  if (s == "preserve") return at::MemoryFormat::Preserve;
  TypeErr(v.Env(), "unknown memory format '" + s + "'");
}

// libtorch's message without what a user cannot act on: the C++ backtrace ("Exception raised
// from ..."), the dispatcher's list of registered kernels with their source files, and length.
std::string CleanMessage(std::string msg) {
  for (const char* cut : {"\nException raised from", "Exception raised from ", "\nframe #0", ".  This usually means", "\n\nCPU: registered at",
                          "\n\nUndefined: registered at", " is only available for these backends"}) {
    size_t at = msg.find(cut);
    if (at != std::string::npos) msg.erase(at);
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (msg.size() > 1000) msg = msg.substr(0, 1000) + " ...";
  return msg;
}

Napi::Error TorchError(Napi::Env env, const std::string& raw) {
  std::string msg = CleanMessage(raw);
  Napi::Error err = Napi::Error::New(env, msg);
  bool oom = msg.find("out of memory") != std::string::npos || msg.find("can't allocate memory") != std::string::npos;
  err.Set("code", Napi::String::New(env, oom ? "ERR_OUT_OF_MEMORY" : "ERR_TORCH"));
  return err;
}

// Every exported function goes through this: libtorch errors become JS Errors with libtorch's
// message (no C++ backtrace) and code ERR_TORCH; out-of-memory gets code ERR_OUT_OF_MEMORY so
// callers can advise.
using Fn = Napi::Value (*)(const Napi::CallbackInfo&);
template <Fn F>
Napi::Value Guard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw TorchError(env, e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    Napi::Error err = Napi::Error::New(env, "out of memory (host allocation failed)");
    err.Set("code", Napi::String::New(env, "ERR_OUT_OF_MEMORY"));
    throw err;
  } catch (const std::exception& e) {
    // c10 errors raised from header code compiled into this addon can miss the c10::Error clause
    // (hidden visibility): same treatment, backtrace cut from what().
    const c10::Error* ce = dynamic_cast<const c10::Error*>(&e);
    throw TorchError(env, ce != nullptr ? ce->what_without_backtrace() : e.what());
  } catch (...) {
    Napi::Error err = Napi::Error::New(env, "unknown native error");
    err.Set("code", Napi::String::New(env, "ERR_TORCH"));
    throw err;
  }
}

#define ARG(i) info[i]
#define ENV info.Env()
#define RET(x) return Wrap(ENV, (x))

// --------------------------------- creation ---------------------------------------------------
Napi::Value zeros(const Napi::CallbackInfo& info) { RET(at::zeros(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value ones(const Napi::CallbackInfo& info) { RET(at::ones(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value empty(const Napi::CallbackInfo& info) { RET(at::empty(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value full(const Napi::CallbackInfo& info) { RET(at::full(Ints(ARG(0), "shape"), Scal(ARG(1)), Opts(ARG(2), ARG(3)))); }
Napi::Value rand(const Napi::CallbackInfo& info) { RET(at::rand(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value randn(const Napi::CallbackInfo& info) { RET(at::randn(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value randint(const Napi::CallbackInfo& info) {
  at::TensorOptions o = Opts(ARG(3).IsUndefined() ? Napi::String::New(ENV, "int64") : ARG(3), ARG(4));
  RET(at::randint(Int(ARG(0), "low"), Int(ARG(1), "high"), Ints(ARG(2), "shape"), o));
}
Napi::Value randperm(const Napi::CallbackInfo& info) { RET(at::randperm(Int(ARG(0), "n"), at::TensorOptions().dtype(at::kLong).device(Dev(ARG(1))))); }
Napi::Value uniform_(const Napi::CallbackInfo& info) { T(ARG(0)).uniform_(Num(ARG(1), "from"), Num(ARG(2), "to")); return ARG(0); }
Napi::Value normal_(const Napi::CallbackInfo& info) { T(ARG(0)).normal_(Num(ARG(1), "mean"), Num(ARG(2), "std")); return ARG(0); }
Napi::Value arange(const Napi::CallbackInfo& info) {
  RET(at::arange(Scal(ARG(0)), Scal(ARG(1)), Scal(ARG(2)), Opts(ARG(3).IsUndefined() ? Napi::String::New(ENV, "int64") : ARG(3), ARG(4))));
}

// fromBuffer(view: ArrayBufferView|ArrayBuffer, shape, dtype, device?) copies the bytes.
Napi::Value fromBuffer(const Napi::CallbackInfo& info) {
  const uint8_t* src = nullptr;
  size_t len = 0;
  if (ARG(0).IsTypedArray()) {
    Napi::TypedArray ta = ARG(0).As<Napi::TypedArray>();
    src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (ARG(0).IsDataView()) {
    Napi::DataView dv = ARG(0).As<Napi::DataView>();
    src = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    len = dv.ByteLength();
  } else if (ARG(0).IsArrayBuffer()) {
    Napi::ArrayBuffer ab = ARG(0).As<Napi::ArrayBuffer>();
    src = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    TypeErr(ENV, "fromBuffer expects a typed array or ArrayBuffer");
  }
  std::vector<int64_t> shape = Ints(ARG(1), "shape");
  at::ScalarType st = DType(ARG(2));
  int64_t numel = 1;
  for (int64_t s : shape) {
    if (s < 0) TypeErr(ENV, "shape has a negative size");
    numel *= s;
  }
  size_t need = static_cast<size_t>(numel) * at::elementSize(st);
  if (need != len)
    throw Napi::RangeError::New(ENV, "buffer has " + std::to_string(len) + " bytes but shape and dtype need " + std::to_string(need));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
  if (need) std::memcpy(t.data_ptr(), src, need);
  at::Device d = Dev(ARG(3));
  if (!d.is_cpu()) t = t.to(d);
  RET(t);
}

// toBuffer(t) -> ArrayBuffer with the C-contiguous bytes of t (copied to CPU if needed).
Napi::Value toBuffer(const Napi::CallbackInfo& info) {
  at::Tensor t = T(ARG(0)).detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  size_t n = t.numel() * t.element_size();
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(ENV, n);
  if (n) std::memcpy(ab.Data(), t.data_ptr(), n);
  return ab;
}

Napi::Value item(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  if (t.numel() != 1) throw Napi::RangeError::New(ENV, "item() needs a tensor with one element, got " + std::to_string(t.numel()));
  if (t.scalar_type() == at::kBool) return Napi::Boolean::New(ENV, t.item<bool>());
  return Napi::Number::New(ENV, t.item<double>());
}

// --------------------------------- metadata ---------------------------------------------------
Napi::Value shape(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  Napi::Array a = Napi::Array::New(ENV, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(ENV, static_cast<double>(t.size(i))));
  return a;
}
Napi::Value strides(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  Napi::Array a = Napi::Array::New(ENV, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(ENV, static_cast<double>(t.stride(i))));
  return a;
}
Napi::Value dtype(const Napi::CallbackInfo& info) { return Napi::String::New(ENV, DTypeName(T(ARG(0)).scalar_type())); }
Napi::Value device(const Napi::CallbackInfo& info) { return Napi::String::New(ENV, T(ARG(0)).device().str()); }
Napi::Value numel(const Napi::CallbackInfo& info) { return Napi::Number::New(ENV, static_cast<double>(T(ARG(0)).numel())); }
Napi::Value isContiguous(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, T(ARG(0)).is_contiguous(Fmt(ARG(1)))); }
Napi::Value requiresGrad(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, T(ARG(0)).requires_grad()); }
Napi::Value isLeaf(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, T(ARG(0)).is_leaf()); }
Napi::Value isDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, !Handle(ARG(0))->t.defined()); }
Napi::Value dispose(const Napi::CallbackInfo& info) {
  Handle(ARG(0))->Release(ENV);
  return ENV.Undefined();
}

// --------------------------------- conversion & views -----------------------------------------
Napi::Value to(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  at::Device d = ARG(1).IsUndefined() || ARG(1).IsNull() ? t.device() : Dev(ARG(1));
  at::ScalarType st = ARG(2).IsUndefined() || ARG(2).IsNull() ? t.scalar_type() : DType(ARG(2));
  RET(t.to(d, st, /*non_blocking=*/Bool(ARG(3)), /*copy=*/Bool(ARG(4))));
}
Napi::Value contiguous(const Napi::CallbackInfo& info) { RET(T(ARG(0)).contiguous(Fmt(ARG(1)))); }
Napi::Value clone(const Napi::CallbackInfo& info) { RET(T(ARG(0)).clone(Fmt(ARG(1).IsUndefined() ? Napi::String::New(ENV, "preserve") : ARG(1)))); }
Napi::Value pinMemory(const Napi::CallbackInfo& info) {
  if (!at::detail::getCUDAHooks().hasCUDA()) RET(T(ARG(0)));
  RET(T(ARG(0)).pin_memory());
}
Napi::Value detach(const Napi::CallbackInfo& info) { RET(T(ARG(0)).detach()); }
Napi::Value reshape(const Napi::CallbackInfo& info) { RET(T(ARG(0)).reshape(Ints(ARG(1), "shape"))); }
Napi::Value view(const Napi::CallbackInfo& info) { RET(T(ARG(0)).view(Ints(ARG(1), "shape"))); }
Napi::Value permute(const Napi::CallbackInfo& info) { RET(T(ARG(0)).permute(Ints(ARG(1), "dims"))); }
Napi::Value transpose(const Napi::CallbackInfo& info) { RET(T(ARG(0)).transpose(Int(ARG(1), "dim0"), Int(ARG(2), "dim1"))); }
Napi::Value slice(const Napi::CallbackInfo& info) {
  c10::optional<int64_t> start = ARG(2).IsNull() || ARG(2).IsUndefined() ? c10::nullopt : c10::optional<int64_t>(Int(ARG(2), "start"));
  c10::optional<int64_t> end = ARG(3).IsNull() || ARG(3).IsUndefined() ? c10::nullopt : c10::optional<int64_t>(Int(ARG(3), "end"));
  int64_t step = ARG(4).IsUndefined() ? 1 : Int(ARG(4), "step");
  RET(T(ARG(0)).slice(Int(ARG(1), "dim"), start, end, step));
}
Napi::Value narrow(const Napi::CallbackInfo& info) { RET(T(ARG(0)).narrow(Int(ARG(1), "dim"), Int(ARG(2), "start"), Int(ARG(3), "length"))); }
Napi::Value select(const Napi::CallbackInfo& info) { RET(T(ARG(0)).select(Int(ARG(1), "dim"), Int(ARG(2), "index"))); }
Napi::Value indexSelect(const Napi::CallbackInfo& info) { RET(T(ARG(0)).index_select(Int(ARG(1), "dim"), T(ARG(2)))); }
Napi::Value gather(const Napi::CallbackInfo& info) { RET(T(ARG(0)).gather(Int(ARG(1), "dim"), T(ARG(2)))); }
Napi::Value maskedSelect(const Napi::CallbackInfo& info) { RET(T(ARG(0)).masked_select(T(ARG(1)))); }
Napi::Value squeeze(const Napi::CallbackInfo& info) {
  if (ARG(1).IsUndefined() || ARG(1).IsNull()) RET(T(ARG(0)).squeeze());
  RET(T(ARG(0)).squeeze(Int(ARG(1), "dim")));
}
Napi::Value unsqueeze(const Napi::CallbackInfo& info) { RET(T(ARG(0)).unsqueeze(Int(ARG(1), "dim"))); }
Napi::Value flatten(const Napi::CallbackInfo& info) {
  RET(T(ARG(0)).flatten(ARG(1).IsUndefined() ? 0 : Int(ARG(1), "start"), ARG(2).IsUndefined() ? -1 : Int(ARG(2), "end")));
}
Napi::Value expand(const Napi::CallbackInfo& info) { RET(T(ARG(0)).expand(Ints(ARG(1), "shape"))); }
Napi::Value cat(const Napi::CallbackInfo& info) { RET(at::cat(Tensors(ARG(0)), ARG(1).IsUndefined() ? 0 : Int(ARG(1), "dim"))); }
Napi::Value stack(const Napi::CallbackInfo& info) { RET(at::stack(Tensors(ARG(0)), ARG(1).IsUndefined() ? 0 : Int(ARG(1), "dim"))); }
Napi::Value chunk(const Napi::CallbackInfo& info) { return WrapList(ENV, T(ARG(0)).chunk(Int(ARG(1), "chunks"), Int(ARG(2), "dim"))); }

// --------------------------------- elementwise ------------------------------------------------
// Binary ops take a tensor or a number on the right.
#define BINARY(name, expr)                                                        \
  Napi::Value name(const Napi::CallbackInfo& info) {                              \
    at::Tensor& a = T(ARG(0));                                                    \
    if (IsTensor(ARG(1))) { at::Tensor& b = T(ARG(1)); RET(expr); }              \
    at::Scalar b = Scal(ARG(1));                                                  \
    RET(expr);                                                                    \
  }
BINARY(mul, a.mul(b))
BINARY(div, a.div(b))
BINARY(pow, a.pow(b))
BINARY(eq, a.eq(b))
BINARY(ne, a.ne(b))
BINARY(lt, a.lt(b))
BINARY(le, a.le(b))
BINARY(gt, a.gt(b))
BINARY(ge, a.ge(b))
BINARY(remainder, a.remainder(b))
Napi::Value add(const Napi::CallbackInfo& info) {
  at::Scalar alpha = ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2));
  if (IsTensor(ARG(1))) RET(T(ARG(0)).add(T(ARG(1)), alpha));
  RET(T(ARG(0)).add(Scal(ARG(1)), alpha));
}
Napi::Value sub(const Napi::CallbackInfo& info) {
  at::Scalar alpha = ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2));
  if (IsTensor(ARG(1))) RET(T(ARG(0)).sub(T(ARG(1)), alpha));
  RET(T(ARG(0)).sub(Scal(ARG(1)), alpha));
}
Napi::Value maximum(const Napi::CallbackInfo& info) { RET(at::maximum(T(ARG(0)), T(ARG(1)))); }
Napi::Value minimum(const Napi::CallbackInfo& info) { RET(at::minimum(T(ARG(0)), T(ARG(1)))); }
Napi::Value logicalAnd(const Napi::CallbackInfo& info) { RET(T(ARG(0)).logical_and(T(ARG(1)))); }
Napi::Value logicalOr(const Napi::CallbackInfo& info) { RET(T(ARG(0)).logical_or(T(ARG(1)))); }
Napi::Value where(const Napi::CallbackInfo& info) {
  at::Tensor& c = T(ARG(0));
  bool ta = IsTensor(ARG(1)), tb = IsTensor(ARG(2));
  if (ta && tb) RET(at::where(c, T(ARG(1)), T(ARG(2))));
  if (ta) RET(at::where(c, T(ARG(1)), Scal(ARG(2))));
  if (tb) RET(at::where(c, Scal(ARG(1)), T(ARG(2))));
  RET(at::where(c, Scal(ARG(1)), Scal(ARG(2))));
}

#define UNARY(name, expr) \
  Napi::Value name(const Napi::CallbackInfo& info) { at::Tensor& a = T(ARG(0)); RET(expr); }
UNARY(neg, a.neg())
UNARY(abs, a.abs())
UNARY(exp, a.exp())
UNARY(log, a.log())
UNARY(log1p, a.log1p())
UNARY(sqrt, a.sqrt())
UNARY(rsqrt, a.rsqrt())
UNARY(sigmoid, a.sigmoid())
UNARY(relu, a.relu())
UNARY(tanh, a.tanh())
UNARY(square, a.square())
UNARY(reciprocal, a.reciprocal())
UNARY(floor, a.floor())
UNARY(ceil, a.ceil())
UNARY(round, a.round())
UNARY(sign, a.sign())
UNARY(isfinite, a.isfinite())
UNARY(isnan, a.isnan())
UNARY(isinf, a.isinf())
UNARY(logicalNot, a.logical_not())
UNARY(sin, a.sin())
UNARY(cos, a.cos())
Napi::Value clamp(const Napi::CallbackInfo& info) {
  c10::optional<at::Scalar> lo, hi;
  if (!(ARG(1).IsNull() || ARG(1).IsUndefined())) lo = Scal(ARG(1));
  if (!(ARG(2).IsNull() || ARG(2).IsUndefined())) hi = Scal(ARG(2));
  RET(T(ARG(0)).clamp(lo, hi));
}

// --------------------------------- reductions -------------------------------------------------
bool AllDims(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }
Napi::Value sum(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  c10::optional<at::ScalarType> dt = OptDType(ARG(3));
  if (AllDims(ARG(1))) RET(a.sum(dt));
  RET(a.sum(Ints(ARG(1), "dims"), Bool(ARG(2)), dt));
}
Napi::Value mean(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.mean());
  RET(a.mean(Ints(ARG(1), "dims"), Bool(ARG(2))));
}
Napi::Value amax(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.max());
  RET(a.amax(Ints(ARG(1), "dims"), Bool(ARG(2))));
}
Napi::Value amin(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.min());
  RET(a.amin(Ints(ARG(1), "dims"), Bool(ARG(2))));
}
Napi::Value argmax(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.argmax());
  RET(a.argmax(Int(ARG(1), "dim"), Bool(ARG(2))));
}
Napi::Value argmin(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.argmin());
  RET(a.argmin(Int(ARG(1), "dim"), Bool(ARG(2))));
}
Napi::Value all(const Napi::CallbackInfo& info) { RET(T(ARG(0)).all()); }
Napi::Value any(const Napi::CallbackInfo& info) { RET(T(ARG(0)).any()); }
Napi::Value norm(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  at::Scalar p = ARG(1).IsUndefined() ? at::Scalar(2.0) : Scal(ARG(1));
  if (AllDims(ARG(2))) RET(a.norm(p));
  RET(a.norm(p, Ints(ARG(2), "dims"), Bool(ARG(3))));
}
Napi::Value var(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.var(Bool(ARG(3))));
  RET(a.var(at::IntArrayRef(Ints(ARG(1), "dims")), Bool(ARG(3)), Bool(ARG(2))));
}
Napi::Value bincount(const Napi::CallbackInfo& info) {
  RET(at::bincount(T(ARG(0)), OptT(ARG(1)), ARG(2).IsUndefined() ? 0 : Int(ARG(2), "minlength")));
}
Napi::Value matmul(const Napi::CallbackInfo& info) { RET(at::matmul(T(ARG(0)), T(ARG(1)))); }

// --------------------------------- neural-network ops -----------------------------------------
Napi::Value conv2d(const Napi::CallbackInfo& info) {
  RET(at::conv2d(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), Ints(ARG(3), "stride"), Ints(ARG(4), "padding"), Ints(ARG(5), "dilation"),
                 Int(ARG(6), "groups")));
}
Napi::Value convTranspose2d(const Napi::CallbackInfo& info) {
  RET(at::conv_transpose2d(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), Ints(ARG(3), "stride"), Ints(ARG(4), "padding"),
                           Ints(ARG(5), "output_padding"), Int(ARG(6), "groups"), Ints(ARG(7), "dilation")));
}
// batchNorm(x, weight, bias, runningMean, runningVar, training, momentum, eps): updates running
// stats in place when training, as torch.nn.functional.batch_norm does.
Napi::Value batchNorm(const Napi::CallbackInfo& info) {
  RET(at::batch_norm(T(ARG(0)), OptT(ARG(1)), OptT(ARG(2)), OptT(ARG(3)), OptT(ARG(4)), Bool(ARG(5)), Num(ARG(6), "momentum"),
                     Num(ARG(7), "eps"), at::globalContext().userEnabledCuDNN()));
}
Napi::Value maxPool2d(const Napi::CallbackInfo& info) {
  RET(at::max_pool2d(T(ARG(0)), Ints(ARG(1), "kernel_size"), Ints(ARG(2), "stride"), Ints(ARG(3), "padding"),
                     Ints(ARG(4), "dilation"), Bool(ARG(5))));
}
Napi::Value avgPool2d(const Napi::CallbackInfo& info) {
  RET(at::avg_pool2d(T(ARG(0)), Ints(ARG(1), "kernel_size"), Ints(ARG(2), "stride"), Ints(ARG(3), "padding")));
}
// interpolate(x, [outH, outW], mode, alignCorners): 'nearest' | 'bilinear' | 'bicubic'.
Napi::Value interpolate(const Napi::CallbackInfo& info) {
  at::Tensor& x = T(ARG(0));
  std::vector<int64_t> size = Ints(ARG(1), "size");
  if (size.size() != 2) TypeErr(ENV, "interpolate size must be [height, width]");
  std::string mode = Str(ARG(2), "mode");
  bool ac = Bool(ARG(3));
  if (mode == "bilinear") RET(at::upsample_bilinear2d(x, size, ac));
  if (mode == "bicubic") RET(at::upsample_bicubic2d(x, size, ac));
  if (mode == "nearest") RET(at::upsample_nearest2d(x, size));
  TypeErr(ENV, "unknown interpolate mode '" + mode + "'");
}
Napi::Value softmax(const Napi::CallbackInfo& info) { RET(at::softmax(T(ARG(0)), Int(ARG(1), "dim"), OptDType(ARG(2)))); }
Napi::Value logSoftmax(const Napi::CallbackInfo& info) { RET(at::log_softmax(T(ARG(0)), Int(ARG(1), "dim"), OptDType(ARG(2)))); }
int64_t Reduction(const Napi::Value& v) {
  if (v.IsUndefined()) return at::Reduction::Mean;
  std::string r = Str(v, "reduction");
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  TypeErr(v.Env(), "reduction must be mean, sum or none");
}
// crossEntropy(logits [N,C,...], target [N,...] int64, weight|null, reduction, ignoreIndex, labelSmoothing)
Napi::Value crossEntropy(const Napi::CallbackInfo& info) {
  RET(at::cross_entropy_loss(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), Reduction(ARG(3)), ARG(4).IsUndefined() ? -100 : Int(ARG(4), "ignore_index"),
                             ARG(5).IsUndefined() ? 0.0 : Num(ARG(5), "label_smoothing")));
}
Napi::Value bceWithLogits(const Napi::CallbackInfo& info) {
  RET(at::binary_cross_entropy_with_logits(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), OptT(ARG(3)), Reduction(ARG(4))));
}
Napi::Value mseLoss(const Napi::CallbackInfo& info) { RET(at::mse_loss(T(ARG(0)), T(ARG(1)), Reduction(ARG(2)))); }
Napi::Value oneHot(const Napi::CallbackInfo& info) { RET(at::one_hot(T(ARG(0)), Int(ARG(1), "num_classes"))); }
// pad(x, [left, right, top, bottom, ...], mode, value)
Napi::Value pad(const Napi::CallbackInfo& info) {
  std::vector<int64_t> p = Ints(ARG(1), "pad");
  std::string mode = ARG(2).IsUndefined() ? "constant" : Str(ARG(2), "mode");
  if (mode == "constant") RET(at::constant_pad_nd(T(ARG(0)), p, ARG(3).IsUndefined() ? at::Scalar(0) : Scal(ARG(3))));
  if (mode == "reflect" && p.size() == 4) RET(at::reflection_pad2d(T(ARG(0)), p));
  if (mode == "replicate" && p.size() == 4) RET(at::replication_pad2d(T(ARG(0)), p));
  TypeErr(ENV, "unsupported pad mode '" + mode + "'");
}
Napi::Value dropout(const Napi::CallbackInfo& info) { RET(at::dropout(T(ARG(0)), Num(ARG(1), "p"), Bool(ARG(2)))); }

// --------------------------------- in-place (return the same JS object) ------------------------
#define INPLACE_BIN(name, expr_t, expr_s)                                          \
  Napi::Value name(const Napi::CallbackInfo& info) {                                \
    at::Tensor& a = T(ARG(0));                                                      \
    if (IsTensor(ARG(1))) { at::Tensor& b = T(ARG(1)); expr_t; }                   \
    else { at::Scalar b = Scal(ARG(1)); expr_s; }                                  \
    return ARG(0);                                                                  \
  }
INPLACE_BIN(mul_, a.mul_(b), a.mul_(b))
INPLACE_BIN(div_, a.div_(b), a.div_(b))
Napi::Value add_(const Napi::CallbackInfo& info) {
  at::Scalar alpha = ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2));
  if (IsTensor(ARG(1))) T(ARG(0)).add_(T(ARG(1)), alpha);
  else T(ARG(0)).add_(Scal(ARG(1)), alpha);
  return ARG(0);
}
Napi::Value addcmul_(const Napi::CallbackInfo& info) { T(ARG(0)).addcmul_(T(ARG(1)), T(ARG(2)), Scal(ARG(3))); return ARG(0); }
Napi::Value addcdiv_(const Napi::CallbackInfo& info) { T(ARG(0)).addcdiv_(T(ARG(1)), T(ARG(2)), Scal(ARG(3))); return ARG(0); }
Napi::Value lerp_(const Napi::CallbackInfo& info) { T(ARG(0)).lerp_(T(ARG(1)), Scal(ARG(2))); return ARG(0); }
Napi::Value copy_(const Napi::CallbackInfo& info) { T(ARG(0)).copy_(T(ARG(1)), Bool(ARG(2))); return ARG(0); }
Napi::Value zero_(const Napi::CallbackInfo& info) { T(ARG(0)).zero_(); return ARG(0); }
Napi::Value fill_(const Napi::CallbackInfo& info) { T(ARG(0)).fill_(Scal(ARG(1))); return ARG(0); }
Napi::Value sqrt_(const Napi::CallbackInfo& info) { T(ARG(0)).sqrt_(); return ARG(0); }
Napi::Value relu_(const Napi::CallbackInfo& info) { T(ARG(0)).relu_(); return ARG(0); }
Napi::Value clamp_(const Napi::CallbackInfo& info) {
  c10::optional<at::Scalar> lo, hi;
  if (!(ARG(1).IsNull() || ARG(1).IsUndefined())) lo = Scal(ARG(1));
  if (!(ARG(2).IsNull() || ARG(2).IsUndefined())) hi = Scal(ARG(2));
  T(ARG(0)).clamp_(lo, hi);
  return ARG(0);
}
// setData(param, value): replaces a parameter's data keeping its identity (like p.data = v).
Napi::Value setData(const Napi::CallbackInfo& info) { T(ARG(0)).set_data(T(ARG(1))); return ARG(0); }

// --------------------------------- foreach (optimizer building blocks) ------------------------
// Scalar-or-list right-hand sides, mirroring torch._foreach_*.
Napi::Value foreachAdd_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) at::_foreach_add_(xs, Tensors(ARG(1)), ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2)));
  else at::_foreach_add_(xs, Scal(ARG(1)));
  return ENV.Undefined();
}
Napi::Value foreachAdd(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) return WrapList(ENV, at::_foreach_add(xs, Tensors(ARG(1)), ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2))));
  return WrapList(ENV, at::_foreach_add(xs, Scal(ARG(1))));
}
Napi::Value foreachMul_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) at::_foreach_mul_(xs, Tensors(ARG(1)));
  else if (IsTensor(ARG(1))) {
    at::Tensor s = T(ARG(1));  // a one-element tensor: multiply without a host sync
    for (auto& x : xs) x.mul_(s);
  } else at::_foreach_mul_(xs, Scal(ARG(1)));
  return ENV.Undefined();
}
Napi::Value foreachDiv_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) at::_foreach_div_(xs, Tensors(ARG(1)));
  else at::_foreach_div_(xs, Scal(ARG(1)));
  return ENV.Undefined();
}
Napi::Value foreachAddcmul_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  at::_foreach_addcmul_(xs, Tensors(ARG(1)), Tensors(ARG(2)), Scal(ARG(3)));
  return ENV.Undefined();
}
Napi::Value foreachAddcdiv_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  at::_foreach_addcdiv_(xs, Tensors(ARG(1)), Tensors(ARG(2)), Scal(ARG(3)));
  return ENV.Undefined();
}
Napi::Value foreachSqrt(const Napi::CallbackInfo& info) { return WrapList(ENV, at::_foreach_sqrt(Tensors(ARG(0)))); }
Napi::Value foreachZero_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  at::_foreach_zero_(xs);
  return ENV.Undefined();
}
Napi::Value foreachLerp_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  auto ys = Tensors(ARG(1));
  at::Scalar w = Scal(ARG(2));
  for (size_t i = 0; i < xs.size(); i++) xs[i].lerp_(ys[i], w);
  return ENV.Undefined();
}
Napi::Value foreachCopy_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  auto ys = Tensors(ARG(1));
  if (xs.size() != ys.size()) TypeErr(ENV, "foreachCopy_ lists differ in length");
  for (size_t i = 0; i < xs.size(); i++) xs[i].copy_(ys[i]);
  return ENV.Undefined();
}
// Per-tensor 2-norms as one stacked fp32 tensor (for clip_grad_norm_).
Napi::Value foreachNorm(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  std::vector<at::Tensor> norms;
  norms.reserve(xs.size());
  for (auto& x : xs) norms.push_back(x.norm(2).to(at::kFloat));
  if (norms.empty()) RET(at::zeros({0}));
  RET(at::stack(norms));
}

// --------------------------------- autograd ---------------------------------------------------
Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) { T(ARG(0)).set_requires_grad(Bool(ARG(1))); return ARG(0); }
Napi::Value backward(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  c10::optional<at::Tensor> g = OptT(ARG(1));
  t.backward(g.has_value() ? *g : at::Tensor(), Bool(ARG(2)));
  return ENV.Undefined();
}
Napi::Value grad(const Napi::CallbackInfo& info) {
  const at::Tensor& g = T(ARG(0)).grad();
  if (!g.defined()) return ENV.Null();
  RET(g);
}
Napi::Value setGrad(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  c10::optional<at::Tensor> g = OptT(ARG(1));
  // As Python's `.grad = g`: a gradient has its tensor's shape and device (later ops assume it).
  // (Another dtype is allowed: the GradScaler tests give fp32 tensors fp16 gradients.)
  if (g.has_value() && (g->sizes() != t.sizes() || g->device() != t.device()))
    throw Napi::RangeError::New(ENV, "assigned grad has a different shape or device than its tensor");
  t.mutable_grad() = g.has_value() ? *g : at::Tensor();
  return ENV.Undefined();
}
// Drops the gradients of a parameter list (zero_grad(set_to_none=True)).
Napi::Value clearGrads(const Napi::CallbackInfo& info) {
  for (auto& t : Tensors(ARG(0))) t.mutable_grad() = at::Tensor();
  return ENV.Undefined();
}
Napi::Value grads(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  Napi::Array a = Napi::Array::New(ENV, xs.size());
  for (size_t i = 0; i < xs.size(); i++) {
    const at::Tensor& g = xs[i].grad();
    a.Set(static_cast<uint32_t>(i), g.defined() ? Wrap(ENV, g) : ENV.Null());
  }
  return a;
}
Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(Bool(ARG(0)));
  return Napi::Boolean::New(ENV, prev);
}
Napi::Value isGradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, c10::GradMode::is_enabled()); }

// Inference mode is an RAII guard in C++; JS scopes enter/exit it in strict LIFO order.
std::vector<std::unique_ptr<c10::InferenceMode>> g_inference;
Napi::Value inferenceEnter(const Napi::CallbackInfo& info) {
  g_inference.push_back(std::make_unique<c10::InferenceMode>(true));
  return Napi::Number::New(ENV, static_cast<double>(g_inference.size()));
}
Napi::Value inferenceExit(const Napi::CallbackInfo& info) {
  if (!g_inference.empty()) g_inference.pop_back();
  return ENV.Undefined();
}

// --------------------------------- autocast & GradScaler --------------------------------------
bool AutocastEnabled(bool cuda) {
#ifdef UNET_AUTOCAST_V2
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
at::ScalarType AutocastDtype(bool cuda) {
#ifdef UNET_AUTOCAST_V2
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
void SetAutocast(bool cuda, bool enabled, at::ScalarType dt) {
#ifdef UNET_AUTOCAST_V2
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, enabled);
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dt);
#else
  if (cuda) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dt);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dt);
  }
#endif
}
struct AutocastState { bool cuda; bool enabled; at::ScalarType dtype; };
std::vector<AutocastState> g_autocast;
// autocastEnter(deviceType, dtype, enabled): like `with torch.autocast(...)`.
Napi::Value autocastEnter(const Napi::CallbackInfo& info) {
  bool cuda = Str(ARG(0), "device type") == "cuda";
  at::ScalarType dt = DType(ARG(1));
  bool enabled = ARG(2).IsUndefined() ? true : Bool(ARG(2));
  AutocastState prev{cuda, AutocastEnabled(cuda), AutocastDtype(cuda)};
  try {
    SetAutocast(cuda, enabled, dt);
  } catch (...) {
    SetAutocast(cuda, prev.enabled, prev.dtype);  // a dtype libtorch refuses leaves no half-entered state
    throw;
  }
  g_autocast.push_back(prev);
  at::autocast::increment_nesting();
  return ENV.Undefined();
}
Napi::Value autocastExit(const Napi::CallbackInfo& info) {
  if (g_autocast.empty()) return ENV.Undefined();
  AutocastState s = g_autocast.back();
  g_autocast.pop_back();
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocast(s.cuda, s.enabled, s.dtype);
  return ENV.Undefined();
}
Napi::Value isAutocastEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, AutocastEnabled(Str(ARG(0), "device type") == "cuda")); }
// On libtorch 1.13 these two exist for CUDA only; the TS GradScaler falls back to plain ops on CPU.
Napi::Value ampUnscale_(const Napi::CallbackInfo& info) {
  auto gs = Tensors(ARG(0));
  at::_amp_foreach_non_finite_check_and_unscale_(gs, T(ARG(1)), T(ARG(2)));
  return ENV.Undefined();
}
Napi::Value ampUpdateScale_(const Napi::CallbackInfo& info) {
  at::_amp_update_scale_(T(ARG(0)), T(ARG(1)), T(ARG(2)), Num(ARG(3), "growth"), Num(ARG(4), "backoff"), Int(ARG(5), "interval"));
  return ENV.Undefined();
}

// --------------------------------- runtime ----------------------------------------------------
Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = Int(ARG(0), "threads");
  // OpenMP aborts the process when it cannot create the threads asked for.
  if (n < 1 || n > 1024) throw Napi::RangeError::New(ENV, "threads must be between 1 and 1024, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return ENV.Undefined();
}
Napi::Value getNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(ENV, at::get_num_threads()); }
Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  uint64_t seed = static_cast<uint64_t>(Int(ARG(0), "seed"));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  auto& hooks = at::detail::getCUDAHooks();
  if (hooks.hasCUDA()) {
    for (int i = 0; i < hooks.getNumGPUs(); i++) {
      auto gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, i));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
  }
  return ENV.Undefined();
}
Napi::Value getRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  RET(gen.get_state());
}
Napi::Value setRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(T(ARG(0)));
  return ENV.Undefined();
}
Napi::Value cudaIsAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, at::detail::getCUDAHooks().hasCUDA()); }
Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  auto& h = at::detail::getCUDAHooks();
  return Napi::Number::New(ENV, h.hasCUDA() ? h.getNumGPUs() : 0);
}
// CPU tensor memory. libtorch's default CPU allocator takes every buffer from posix_memalign(64).
// glibc serves an aligned request from a chunk slightly larger than the size asked for and splits
// off the slack; with small allocations in between (handle objects, autograd nodes), freed
// activation buffers stop fitting the next request of the same size and the heap grows. Measured
// on 512 KB activations (conv/BN/ReLU/cat/backward steps): in a loop that does not yield to the
// event loop, ~1 MB more resident memory per step without bound (11 GB after ~10,000 steps);
// in an async loop, a peak of 592 MB against 248 MB with the allocator below. Plain malloc of
// size + 64 with the pointer aligned by hand reuses freed chunks, at the same speed (UNet step
// and test/engine.memory.test.ts). UNET_CPU_ALLOCATOR=default keeps libtorch's allocator.
//
// Large buffers are kept for reuse: glibc maps every chunk above 32 MB fresh from the kernel and
// unmaps it on free, so each page faults again on first touch. A UNet step at B=2 256x256 made
// ~430,000 page faults (its full-resolution activations are 33-67 MB) and spent ~13% of its time
// on them. Freed blocks of >= 4 MB stay in a bounded cache (UNET_CPU_CACHE_MB, default 25% of RAM;
// 0 turns it off) and serve the next request of the same size (up to 1/8 larger); the oldest go
// first when it is full, and mallocTrim() empties it.
struct BlockCache {
  std::mutex mu;
  std::vector<std::pair<size_t, void*>> blocks;  // (capacity, raw malloc pointer), oldest first
  size_t bytes = 0;
  size_t limit = 0;
  void* Take(size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    size_t best = blocks.size();
    for (size_t i = 0; i < blocks.size(); i++) {
      size_t cap = blocks[i].first;
      if (cap >= n && cap - n <= n / 8 && (best == blocks.size() || cap < blocks[best].first)) best = i;
    }
    if (best == blocks.size()) return nullptr;
    void* raw = blocks[best].second;
    bytes -= blocks[best].first;
    blocks.erase(blocks.begin() + best);
    return raw;
  }
  // Keeps a block; false when it does not fit at all (the caller frees it).
  bool Put(size_t cap, void* raw) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (cap > limit) return false;
      while (bytes + cap > limit && !blocks.empty()) {
        evicted.push_back(blocks.front().second);
        bytes -= blocks.front().first;
        blocks.erase(blocks.begin());
      }
      blocks.emplace_back(cap, raw);
      bytes += cap;
    }
    for (void* p : evicted) std::free(p);
    return true;
  }
  void Clear() {
    std::vector<std::pair<size_t, void*>> all;
    {
      std::lock_guard<std::mutex> lock(mu);
      all.swap(blocks);
      bytes = 0;
    }
    for (auto& b : all) std::free(b.second);
  }
};
BlockCache g_block_cache;

struct MallocCPUAllocator final : public at::Allocator {
  static constexpr size_t kAlign = 64;  // c10's gAlignment (AVX-512)
  static constexpr size_t kHeader = 2 * sizeof(void*);  // raw pointer, cacheable capacity (0: small)
  static constexpr size_t kBig = size_t(4) << 20;
  static void Free(void* p) {
    if (p == nullptr) return;
    void* raw = static_cast<void**>(p)[-1];
    size_t cap = reinterpret_cast<size_t*>(p)[-2];
    if (cap == 0 || !g_block_cache.Put(cap, raw)) std::free(raw);
  }
  static at::DataPtr Make(size_t n) {
    if (n == 0) return {nullptr, nullptr, &Free, at::Device(at::kCPU)};
    size_t total = n + kAlign + kHeader;
    TORCH_CHECK(total > n, "CPU out of memory: cannot allocate ", n, " bytes");
    bool big = n >= kBig && g_block_cache.limit > 0;
    void* raw = big ? g_block_cache.Take(total) : nullptr;
    size_t cap = total;
    if (raw != nullptr) {
      cap = malloc_usable_size(raw);
    } else {
      raw = std::malloc(total);
      TORCH_CHECK(raw != nullptr, "CPU out of memory: cannot allocate ", n, " bytes");
      if (big) cap = malloc_usable_size(raw);
    }
    uintptr_t a = (reinterpret_cast<uintptr_t>(raw) + kHeader + kAlign - 1) & ~static_cast<uintptr_t>(kAlign - 1);
    reinterpret_cast<void**>(a)[-1] = raw;
    reinterpret_cast<size_t*>(a)[-2] = big ? cap : 0;
    return {reinterpret_cast<void*>(a), reinterpret_cast<void*>(a), &Free, at::Device(at::kCPU)};
  }
  // libtorch < 2.3 declares allocate() const, later versions non-const (and add copy_data): defining
  // both, without `override`, compiles against either.
  at::DataPtr allocate(size_t n) const { return Make(n); }
  at::DataPtr allocate(size_t n) { return Make(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  at::DeleterFnPtr raw_deleter() const override { return &Free; }
};
MallocCPUAllocator g_cpu_allocator;

Napi::Value setFlags(const Napi::CallbackInfo& info) {
  Napi::Object o = ARG(0).As<Napi::Object>();
  auto& ctx = at::globalContext();
  if (o.Has("cudnnBenchmark")) ctx.setBenchmarkCuDNN(Bool(o.Get("cudnnBenchmark")));
  if (o.Has("cudnnDeterministic")) ctx.setDeterministicCuDNN(Bool(o.Get("cudnnDeterministic")));
  if (o.Has("allowTF32")) {
    ctx.setAllowTF32CuBLAS(Bool(o.Get("allowTF32")));
    ctx.setAllowTF32CuDNN(Bool(o.Get("allowTF32")));
  }
  if (o.Has("mkldnn")) ctx.setUserEnabledMkldnn(Bool(o.Get("mkldnn")));
  return ENV.Undefined();
}
Napi::Value stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(ENV);
  o.Set("liveTensors", Napi::Number::New(ENV, static_cast<double>(g_live_tensors.load())));
  o.Set("liveBytes", Napi::Number::New(ENV, static_cast<double>(g_live_bytes.load())));
  {
    std::lock_guard<std::mutex> lock(g_block_cache.mu);
    o.Set("cachedBytes", Napi::Number::New(ENV, static_cast<double>(g_block_cache.bytes)));
  }
  return o;
}
Napi::Value mallocTrim(const Napi::CallbackInfo& info) {
  g_block_cache.Clear();
  return Napi::Boolean::New(ENV, malloc_trim(0) != 0);
}
Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(ENV);
  o.Set("torch", Napi::String::New(ENV, TORCH_VERSION));
  o.Set("cuda", Napi::Boolean::New(ENV, at::detail::getCUDAHooks().hasCUDA()));
  o.Set("mkldnn", Napi::Boolean::New(ENV, at::hasMKLDNN()));
  o.Set("config", Napi::String::New(ENV, at::show_config()));
  o.Set("parallel", Napi::String::New(ENV, at::get_parallel_info()));
  return o;
}


#define EXPORT(name) exports.Set(#name, Napi::Function::New<Guard<name>>(env, #name))

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // CPU tensors come from posix_memalign; with glibc's dynamic mmap threshold, freed activation
  // buffers can fragment the heap so that RSS grows although nothing leaks. A fixed threshold
  // (UNET_MMAP_THRESHOLD bytes) returns large buffers to the OS on free, but every large
  // allocation then page-faults: conv forward+backward measured 2.6x slower here. So it is opt-in,
  // and the trainer calls malloc_trim() between epochs instead.
  if (getenv("UNET_MMAP_THRESHOLD")) mallopt(M_MMAP_THRESHOLD, atoi(getenv("UNET_MMAP_THRESHOLD")));
  {
    const char* a = getenv("UNET_CPU_ALLOCATOR");
    if (a == nullptr || std::string(a) != "default") c10::SetCPUAllocator(&g_cpu_allocator, /*priority=*/10);
    const char* mb = getenv("UNET_CPU_CACHE_MB");
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    g_block_cache.limit = mb != nullptr ? size_t(std::max(0.0, atof(mb))) << 20 : pages > 0 && page > 0 ? size_t(pages) * size_t(page) / 4 : 0;
  }
  TensorHandle::Init(env, exports);
  EXPORT(zeros); EXPORT(ones); EXPORT(empty); EXPORT(full); EXPORT(rand); EXPORT(randn); EXPORT(randint); EXPORT(randperm);
  EXPORT(uniform_); EXPORT(normal_); EXPORT(arange); EXPORT(fromBuffer); EXPORT(toBuffer); EXPORT(item);
  EXPORT(shape); EXPORT(strides); EXPORT(dtype); EXPORT(device); EXPORT(numel); EXPORT(isContiguous); EXPORT(requiresGrad);
  EXPORT(isLeaf); EXPORT(isDisposed); EXPORT(dispose);
  EXPORT(to); EXPORT(contiguous); EXPORT(clone); EXPORT(pinMemory); EXPORT(detach); EXPORT(reshape); EXPORT(view); EXPORT(permute);
  EXPORT(transpose); EXPORT(slice); EXPORT(narrow); EXPORT(select); EXPORT(indexSelect); EXPORT(gather); EXPORT(maskedSelect);
  EXPORT(squeeze); EXPORT(unsqueeze); EXPORT(flatten); EXPORT(expand); EXPORT(cat); EXPORT(stack); EXPORT(chunk);
  EXPORT(add); EXPORT(sub); EXPORT(mul); EXPORT(div); EXPORT(pow); EXPORT(eq); EXPORT(ne); EXPORT(lt); EXPORT(le); EXPORT(gt);
  EXPORT(ge); EXPORT(remainder); EXPORT(maximum); EXPORT(minimum); EXPORT(logicalAnd); EXPORT(logicalOr); EXPORT(where);
  EXPORT(neg); EXPORT(abs); EXPORT(exp); EXPORT(log); EXPORT(log1p); EXPORT(sqrt); EXPORT(rsqrt); EXPORT(sigmoid); EXPORT(relu);
  EXPORT(tanh); EXPORT(square); EXPORT(reciprocal); EXPORT(floor); EXPORT(ceil); EXPORT(round); EXPORT(sign); EXPORT(isfinite);
  EXPORT(isnan); EXPORT(isinf); EXPORT(logicalNot); EXPORT(sin); EXPORT(cos); EXPORT(clamp);
  EXPORT(sum); EXPORT(mean); EXPORT(amax); EXPORT(amin); EXPORT(argmax); EXPORT(argmin); EXPORT(all); EXPORT(any); EXPORT(norm);
  EXPORT(var); EXPORT(bincount); EXPORT(matmul);
  EXPORT(conv2d); EXPORT(convTranspose2d); EXPORT(batchNorm); EXPORT(maxPool2d); EXPORT(avgPool2d); EXPORT(interpolate);
  EXPORT(softmax); EXPORT(logSoftmax); EXPORT(crossEntropy); EXPORT(bceWithLogits); EXPORT(mseLoss); EXPORT(oneHot); EXPORT(pad);
  EXPORT(dropout);
  EXPORT(add_); EXPORT(mul_); EXPORT(div_); EXPORT(addcmul_); EXPORT(addcdiv_); EXPORT(lerp_); EXPORT(copy_); EXPORT(zero_);
  EXPORT(fill_); EXPORT(sqrt_); EXPORT(relu_); EXPORT(clamp_); EXPORT(setData);
  EXPORT(foreachAdd_); EXPORT(foreachAdd); EXPORT(foreachMul_); EXPORT(foreachDiv_); EXPORT(foreachAddcmul_); EXPORT(foreachAddcdiv_);
  EXPORT(foreachSqrt); EXPORT(foreachZero_); EXPORT(foreachLerp_); EXPORT(foreachCopy_); EXPORT(foreachNorm);
  EXPORT(setRequiresGrad); EXPORT(backward); EXPORT(grad); EXPORT(setGrad); EXPORT(clearGrads); EXPORT(grads);
  EXPORT(setGradEnabled); EXPORT(isGradEnabled); EXPORT(inferenceEnter); EXPORT(inferenceExit);
  EXPORT(autocastEnter); EXPORT(autocastExit); EXPORT(isAutocastEnabled); EXPORT(ampUnscale_); EXPORT(ampUpdateScale_);
  EXPORT(setNumThreads); EXPORT(getNumThreads); EXPORT(manualSeed); EXPORT(getRngState); EXPORT(setRngState);
  EXPORT(cudaIsAvailable); EXPORT(cudaDeviceCount); EXPORT(setFlags); EXPORT(stats); EXPORT(mallocTrim); EXPORT(buildInfo);
  EXPORT(distInit); EXPORT(distInfo); EXPORT(distBroadcast); EXPORT(distAllreduce); EXPORT(distBarrier); EXPORT(distReducer);
  EXPORT(distBackward); EXPORT(distBatchNorm); EXPORT(distDestroy);
  EXPORT(resample8); EXPORT(decodeJpeg);
  return exports;
}

}  // namespace

// The helpers other source files use (addon.h).
at::Tensor& unet::T(const Napi::Value& v) { return ::T(v); }
std::vector<at::Tensor> unet::Tensors(const Napi::Value& v) { return ::Tensors(v); }
Napi::Value unet::Wrap(Napi::Env env, at::Tensor t) { return ::Wrap(env, std::move(t)); }
std::string unet::CleanMessage(std::string msg) { return ::CleanMessage(std::move(msg)); }

NODE_API_MODULE(unet_torch, Init)
