// What the addon's source files share. tensor.cpp owns the tensor handles, argument conversion and
// the error guard; ops.cpp, autograd.cpp and runtime.cpp define the bound functions; runtime.cpp
// registers them all (Init); allocator.cpp is the CPU allocator (allocator.h, no ATen).
#pragma once
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <napi.h>
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace unet {
// ---- tensor handles (tensor.cpp)
at::Tensor& T(const Napi::Value& v);                     // the tensor behind a handle (TypeError otherwise)
c10::optional<at::Tensor> OptT(const Napi::Value& v);    // null/undefined: none
bool IsTensor(const Napi::Value& v);
std::vector<at::Tensor> Tensors(const Napi::Value& v);   // an array of handles
Napi::Value Wrap(Napi::Env env, at::Tensor t);           // a new handle
Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
struct LiveCounts { int64_t tensors; int64_t bytes; };
LiveCounts Live();                                       // handles not yet disposed, and their bytes

// ---- JS values to C++ (tensor.cpp); a wrong type throws a TypeError naming `what`
[[noreturn]] void TypeErr(Napi::Env env, const std::string& m);
int64_t Int(const Napi::Value& v, const char* what);
double Num(const Napi::Value& v, const char* what);
bool Bool(const Napi::Value& v);
std::string Str(const Napi::Value& v, const char* what);
std::vector<int64_t> Ints(const Napi::Value& v, const char* what);  // a number or an array
at::ScalarType DType(const Napi::Value& v);               // 'float32', 'int64', ...
c10::optional<at::ScalarType> OptDType(const Napi::Value& v);
const char* DTypeName(at::ScalarType s);
at::Device Dev(const Napi::Value& v);                      // cpu, cuda, cuda:N (undefined: cpu)
at::TensorOptions Opts(const Napi::Value& dtype, const Napi::Value& device);
at::Scalar Scal(const Napi::Value& v);                     // integral numbers become int64
at::MemoryFormat Fmt(const Napi::Value& v);

// ---- errors (tensor.cpp)
std::string CleanMessage(std::string msg);                 // a libtorch message without its backtrace
Napi::Error TorchError(Napi::Env env, const std::string& raw);  // code ERR_TORCH or ERR_OUT_OF_MEMORY
Napi::Error CodedError(Napi::Env env, const std::string& msg, const char* code);

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
    throw CodedError(env, "out of memory (host allocation failed)", "ERR_OUT_OF_MEMORY");
  } catch (const std::exception& e) {
    // c10 errors raised from header code compiled into this addon can miss the c10::Error clause
    // (hidden visibility): same treatment, backtrace cut from what().
    const c10::Error* ce = dynamic_cast<const c10::Error*>(&e);
    throw TorchError(env, ce != nullptr ? ce->what_without_backtrace() : e.what());
  } catch (...) {
    throw CodedError(env, "unknown native error", "ERR_TORCH");
  }
}

// ---- each file's exports (runtime.cpp's Init calls these)
void RegisterTensor(Napi::Env env, Napi::Object exports);    // tensor.cpp: TensorHandle, metadata, buffers
void RegisterOps(Napi::Env env, Napi::Object exports);       // ops.cpp
void RegisterAutograd(Napi::Env env, Napi::Object exports);  // autograd.cpp: autograd, autocast, AMP
void RegisterActivations(Napi::Env env, Napi::Object exports);  // activations.cpp: the encoders' activations, layer norm
}  // namespace unet

// Shorthands of the binding files.
#define ARG(i) info[i]
#define ENV info.Env()
#define RET(x) return ::unet::Wrap(ENV, (x))
#define EXPORT(name) exports.Set(#name, Napi::Function::New<::unet::Guard<name>>(env, #name))

// native/distributed.cpp: c10d process group, broadcast, allreduce, DDP's gradient Reducer.
Napi::Value distInit(const Napi::CallbackInfo& info);
Napi::Value distInfo(const Napi::CallbackInfo& info);
Napi::Value distBroadcast(const Napi::CallbackInfo& info);
Napi::Value distAllreduce(const Napi::CallbackInfo& info);
Napi::Value distBarrier(const Napi::CallbackInfo& info);
Napi::Value distReducer(const Napi::CallbackInfo& info);
Napi::Value distBackward(const Napi::CallbackInfo& info);
Napi::Value distBatchNorm(const Napi::CallbackInfo& info);
Napi::Value distDestroy(const Napi::CallbackInfo& info);
// native/resample.cpp (Pillow's 8-bit resampling, no torch).
Napi::Value resample8(const Napi::CallbackInfo& info);
