// status.compressedNodes: base64 (standard alphabet) → zstd | gzip | brotli,
// chosen by magic bytes as Argo v4.1+ does (anything that is neither zstd nor
// gzip is brotli). Every decoder streams into a buffer capped at maxOutput so
// a decompression bomb costs at most maxOutput bytes.
#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "common/base64.h"
#include "engine/workflow.h"

namespace exitrec {

namespace {

constexpr std::string_view kPrefix = "status.compressedNodes: ";

Error fail(const std::string& message) {
  return makeError(ErrorCode::kInvalidInput, std::string(kPrefix) + message);
}

// Grows `out` by at most `chunk` bytes without crossing `maxOutput`; returns
// the writable span size (0 means the cap was reached).
std::size_t grow(std::string& out, std::size_t used, std::size_t maxOutput) {
  if (used < out.size())
    return out.size() - used;
  if (out.size() >= maxOutput)
    return 0;
  std::size_t next = out.empty() ? std::size_t{64} << 10 : out.size() * 2;
  if (next > maxOutput)
    next = maxOutput;
  out.resize(next);
  return out.size() - used;
}

std::atomic<std::size_t> gMaxNodeBytes{kMaxDecompressedNodes};

Error tooLarge(std::size_t maxOutput, bool& overLimit) {
  overLimit = true;
  return fail("decompressed node status exceeds the limit of " + std::to_string(maxOutput) +
              " bytes");
}

Result<std::string> gunzip(std::string_view data, std::size_t maxOutput, bool& overLimit) {
  z_stream zs{};
  // 15 + 32: zlib or gzip header, detected automatically.
  if (inflateInit2(&zs, 15 + 32) != Z_OK)
    return fail("gzip: cannot initialise zlib");
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  if (data.size() > 0xFFFFFFFFu)
    return fail("gzip: input too large");
  std::string out;
  std::size_t used = 0;
  for (;;) {
    std::size_t room = grow(out, used, maxOutput);
    if (room == 0)
      return tooLarge(maxOutput, overLimit);
    if (room > 0x40000000u)
      room = 0x40000000u;
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs.avail_out = static_cast<uInt>(room);
    int rc = inflate(&zs, Z_NO_FLUSH);
    used += room - zs.avail_out;
    if (rc == Z_STREAM_END)
      break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0)
      return fail("gzip: truncated stream");
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return fail(std::string("gzip: ") + (zs.msg != nullptr ? zs.msg : "corrupt data"));
    }
  }
  out.resize(used);
  return out;
}

Result<std::string> unzstd(std::string_view data, std::size_t maxOutput, bool& overLimit) {
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> ds(ZSTD_createDStream(),
                                                                ZSTD_freeDStream);
  if (!ds)
    return fail("zstd: cannot create a decoder");
  ZSTD_initDStream(ds.get());
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  std::string out;
  std::size_t used = 0;
  std::size_t last = 1;
  while (in.pos < in.size || last != 0) {
    std::size_t room = grow(out, used, maxOutput);
    if (room == 0)
      return tooLarge(maxOutput, overLimit);
    ZSTD_outBuffer ob{out.data() + used, room, 0};
    last = ZSTD_decompressStream(ds.get(), &ob, &in);
    if (ZSTD_isError(last))
      return fail(std::string("zstd: ") + ZSTD_getErrorName(last));
    used += ob.pos;
    // No input left, nothing produced, and the frame is not finished: cut.
    if (in.pos == in.size && last != 0 && ob.pos < room)
      return fail("zstd: truncated stream");
  }
  out.resize(used);
  return out;
}

Result<std::string> unbrotli(std::string_view data, std::size_t maxOutput, bool& overLimit) {
  std::unique_ptr<BrotliDecoderState, decltype(&BrotliDecoderDestroyInstance)> st(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), BrotliDecoderDestroyInstance);
  if (!st)
    return fail("brotli: cannot create a decoder");
  std::size_t availIn = data.size();
  const auto* nextIn = reinterpret_cast<const std::uint8_t*>(data.data());
  std::string out;
  std::size_t used = 0;
  for (;;) {
    std::size_t room = grow(out, used, maxOutput);
    if (room == 0)
      return tooLarge(maxOutput, overLimit);
    std::size_t availOut = room;
    auto* nextOut = reinterpret_cast<std::uint8_t*>(out.data() + used);
    BrotliDecoderResult rc =
        BrotliDecoderDecompressStream(st.get(), &availIn, &nextIn, &availOut, &nextOut, nullptr);
    used += room - availOut;
    if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
      if (availIn != 0)
        return fail("brotli: trailing data after the stream");
      break;
    }
    if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
      return fail("not zstd or gzip, and not valid brotli either (truncated stream)");
    }
    if (rc == BROTLI_DECODER_RESULT_ERROR) {
      return fail(std::string("not zstd or gzip, and not valid brotli either (") +
                  BrotliDecoderErrorString(BrotliDecoderGetErrorCode(st.get())) + ")");
    }
    // NEEDS_MORE_OUTPUT: loop and grow.
  }
  out.resize(used);
  return out;
}

}  // namespace

void setMaxDecompressedNodeBytes(std::size_t bytes) {
  gMaxNodeBytes.store(bytes, std::memory_order_relaxed);
}

std::size_t maxDecompressedNodeBytes() {
  return gMaxNodeBytes.load(std::memory_order_relaxed);
}

Result<std::string> decompressNodes(std::string_view base64Text, std::size_t maxOutput) {
  bool overLimit = false;
  return decompressNodes(base64Text, maxOutput, overLimit);
}

Result<std::string> decompressNodes(std::string_view base64Text, std::size_t maxOutput,
                                    bool& overLimit) {
  overLimit = false;
  // Argo writes standard base64; wrapped or unpadded text is accepted too.
  auto raw = base64Decode(base64Text, {.skipWhitespace = true, .requirePadding = false});
  if (!raw)
    return fail(raw.error().message);
  const std::string& bytes = *raw;
  if (bytes.empty())
    return fail("empty after base64 decoding");
  auto magic = [&](std::initializer_list<unsigned char> m) {
    if (bytes.size() < m.size())
      return false;
    std::size_t i = 0;
    for (unsigned char b : m) {
      if (static_cast<unsigned char>(bytes[i++]) != b)
        return false;
    }
    return true;
  };
  if (magic({0x28, 0xb5, 0x2f, 0xfd}))
    return unzstd(bytes, maxOutput, overLimit);
  if (magic({0x1f, 0x8b}))
    return gunzip(bytes, maxOutput, overLimit);
  return unbrotli(bytes, maxOutput, overLimit);
}

}  // namespace exitrec
