// Tensor handles and the conversion of JS arguments: the JS object that holds an at::Tensor, the
// checks that turn JS values into C++ ones (a TypeError naming the argument otherwise), libtorch's
// error messages made readable, and the bound functions that read a handle's metadata and bytes.
#include "addon.h"

#include <ATen/detail/CUDAHooksInterface.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace unet {
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

TensorHandle* Handle(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(TensorHandle::ctor.Value()))
    TypeErr(env, "expected a Tensor");
  return TensorHandle::Unwrap(v.As<Napi::Object>());
}

}  // namespace

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  Napi::Object o = TensorHandle::ctor.New({});
  TensorHandle::Unwrap(o)->Set(env, std::move(t));
  return o;
}

[[noreturn]] void TypeErr(Napi::Env env, const std::string& m) { throw Napi::TypeError::New(env, m); }

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

Napi::Error CodedError(Napi::Env env, const std::string& msg, const char* code) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

Napi::Error TorchError(Napi::Env env, const std::string& raw) {
  std::string msg = CleanMessage(raw);
  bool oom = msg.find("out of memory") != std::string::npos || msg.find("can't allocate memory") != std::string::npos;
  return CodedError(env, msg, oom ? "ERR_OUT_OF_MEMORY" : "ERR_TORCH");
}

LiveCounts Live() { return {g_live_tensors.load(), g_live_bytes.load()}; }

namespace {

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

// --------------------------------- data transfer ----------------------------------------------
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

}  // namespace

void RegisterTensor(Napi::Env env, Napi::Object exports) {
  TensorHandle::Init(env, exports);
  EXPORT(fromBuffer); EXPORT(toBuffer); EXPORT(item);
  EXPORT(shape); EXPORT(strides); EXPORT(dtype); EXPORT(device); EXPORT(numel); EXPORT(isContiguous); EXPORT(requiresGrad);
  EXPORT(isLeaf); EXPORT(isDisposed); EXPORT(dispose);
}

}  // namespace unet
