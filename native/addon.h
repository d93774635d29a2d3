// What the addon's source files share. torch_addon.cpp owns the tensor handles, argument
// conversion and error guard; other files define functions that torch_addon.cpp registers through
// that guard.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace unet {
at::Tensor& T(const Napi::Value& v);                 // the tensor behind a handle (TypeError otherwise)
std::vector<at::Tensor> Tensors(const Napi::Value& v);  // an array of handles
Napi::Value Wrap(Napi::Env env, at::Tensor t);        // a new handle
std::string CleanMessage(std::string msg);           // a libtorch message without its backtrace
}  // namespace unet

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
