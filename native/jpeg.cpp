// JPEG decoding through the system libjpeg-turbo, the library Pillow decodes with, off the main
// thread. libvips (sharp) took ~3x Pillow's CPU time for a full-size decode, which the exact
// (Pillow) resize needs. Same library, same defaults (islow IDCT, fancy upsampling), so the pixels
// are Pillow's. Only plain greyscale and YCbCr/RGB files come here; anything else (CMYK, 12-bit,
// a file libjpeg refuses) rejects, and the caller falls back to sharp for its error or conversion.
// No torch headers here.
#define NAPI_VERSION 8
#include <napi.h>

#ifdef UNET_JPEG  // set by build.mjs when libjpeg's headers and library are there
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <cstdlib>
#include <memory>
#include <string>

#include <jpeglib.h>
#include <jerror.h>

namespace unet_jpeg {

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JumpOnError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

// Warnings (e.g. extraneous bytes before a marker) are accepted, as Pillow accepts them; a file
// that ends early is refused, as Pillow refuses it ("image file is truncated"), where libjpeg
// would pad the image with grey.
void OnMessage(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) JumpOnError(cinfo);
}

class DecodeJpeg : public Napi::AsyncWorker {
 public:
  DecodeJpeg(Napi::Env env, const Napi::Uint8Array& bytes)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), bytes_(bytes.Data()), size_(bytes.ElementLength()) {
    keep_ = Napi::Persistent(bytes.As<Napi::Object>());  // alive until the worker is deleted, on the main thread
  }
  ~DecodeJpeg() override { std::free(pixels_); }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    // Nothing with a destructor lives between setjmp and the longjmps below.
    jpeg_decompress_struct cinfo;
    ErrorManager err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = JumpOnError;
    err.pub.emit_message = OnMessage;
    if (setjmp(err.jump)) {
      jpeg_destroy_decompress(&cinfo);
      SetError(std::string("decodeJpeg: ") + err.message);
      return;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes_, static_cast<unsigned long>(size_));
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
      cinfo.out_color_space = JCS_GRAYSCALE;
    } else if ((cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) && cinfo.num_components == 3) {
      cinfo.out_color_space = JCS_RGB;
    } else {
      jpeg_destroy_decompress(&cinfo);
      SetError("decodeJpeg: unsupported colour space");
      return;
    }
    jpeg_start_decompress(&cinfo);
    width_ = static_cast<int>(cinfo.output_width);
    height_ = static_cast<int>(cinfo.output_height);
    channels_ = cinfo.output_components;
    const size_t stride = static_cast<size_t>(width_) * channels_;
    pixels_ = static_cast<uint8_t*>(std::malloc(stride * height_));
    if (pixels_ == nullptr) {
      jpeg_destroy_decompress(&cinfo);
      SetError("decodeJpeg: out of memory");
      return;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = pixels_ + stride * cinfo.output_scanline;
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
  }

  void OnOK() override {
    Napi::Env env = Env();
    const size_t n = static_cast<size_t>(width_) * height_ * channels_;
    // The buffer takes the pixels over: no copy of a multi-megabyte image.
    auto data = Napi::Buffer<uint8_t>::New(env, pixels_, n, [](Napi::Env, uint8_t* p) { std::free(p); });
    pixels_ = nullptr;
    Napi::Object out = Napi::Object::New(env);
    out.Set("data", data);
    out.Set("width", width_);
    out.Set("height", height_);
    out.Set("channels", channels_);
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  const uint8_t* bytes_;
  size_t size_;
  uint8_t* pixels_ = nullptr;
  int width_ = 0, height_ = 0, channels_ = 0;
};

}  // namespace unet_jpeg

#endif  // UNET_JPEG

// decodeJpeg(bytes: Uint8Array): Promise<{ data: Buffer, width, height, channels: 1 | 3 }>,
// interleaved [H,W,C] 8-bit, decoded on the libuv thread pool.
Napi::Value decodeJpeg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), "decodeJpeg: expects a Uint8Array");
  }
#ifndef UNET_JPEG
  auto d = Napi::Promise::Deferred::New(info.Env());
  d.Reject(Napi::Error::New(info.Env(), "decodeJpeg: built without libjpeg").Value());
  return d.Promise();
#else
  auto* worker = new unet_jpeg::DecodeJpeg(info.Env(), info[0].As<Napi::Uint8Array>());
  Napi::Promise p = worker->Promise();
  worker->Queue();  // deletes itself when done
  return p;
#endif
}
