// ParseJson: a scan for UTF-8 and nesting depth, then nlohmann's parser.
//
// The scan tracks strings exactly as the JSON grammar does (a string starts
// at a '"' outside one and ends at the next '"' not escaped by '\'), so on
// text that is valid JSON its depth is the depth nlohmann will build. On text
// that is not, the parser rejects it anyway; what it may have built before
// the error is discarded by nlohmann's iterative destructor.
#include <array>
#include <string>

#include "baton/json.h"
#include "util/utf8.h"

namespace baton {
namespace {

constexpr size_t kMaxMessageBytes = 300;

// What the scan must look at; every other byte is skipped in a tight loop.
enum : unsigned char { kPlain = 0, kQuote, kBackslash, kHigh, kOpen, kClose };

constexpr std::array<unsigned char, 256> MakeClasses() {
  std::array<unsigned char, 256> c{};
  c['"'] = kQuote;
  c['\\'] = kBackslash;
  c['['] = c['{'] = kOpen;
  c[']'] = c['}'] = kClose;
  for (int b = 0x80; b < 0x100; ++b) c[b] = kHigh;
  return c;
}
constexpr std::array<unsigned char, 256> kClasses = MakeClasses();

Status ScanJsonText(std::string_view text, const JsonLimits& limits) {
  if (limits.max_bytes != 0 && text.size() > limits.max_bytes) {
    return InvalidArgumentError("is larger than " + std::to_string(limits.max_bytes) + " bytes");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < n;) {
    const unsigned char cls = kClasses[p[i]];
    if (cls == kPlain) {
      ++i;
      continue;
    }
    if (cls == kHigh) {
      const size_t len = util::Utf8SequenceLength(text, i);
      if (len == 0) return InvalidArgumentError("is not valid UTF-8 (byte " + std::to_string(i) + ")");
      i += len;
      continue;
    }
    if (in_string) {
      if (cls == kQuote) {
        in_string = false;
      } else if (cls == kBackslash && i + 1 < n && p[i + 1] < 0x80) {
        ++i;  // the escaped character cannot end the string
      }
    } else if (cls == kQuote) {
      in_string = true;
    } else if (cls == kOpen) {
      if (++depth > limits.max_depth) {
        return InvalidArgumentError("is nested deeper than " + std::to_string(limits.max_depth) + " levels (byte " +
                                    std::to_string(i) + ")");
      }
    } else if (cls == kClose) {
      if (depth > 0) --depth;
    }
    ++i;
  }
  return Status::Ok();
}

// nlohmann's message without its "[json.exception.parse_error.101] " tag,
// cut to a readable length at a UTF-8 boundary (it quotes the input).
std::string ParserMessage(const char* what) {
  std::string m(what);
  if (m.rfind("[json.exception.", 0) == 0) {
    size_t close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  if (m.size() > kMaxMessageBytes) {
    size_t cut = kMaxMessageBytes;
    while (cut > 0 && (static_cast<unsigned char>(m[cut]) & 0xC0) == 0x80) --cut;
    m.resize(cut);
    m += "…";
  }
  return m;
}

template <typename J>
Status Parse(std::string_view text, J* out, const JsonLimits& limits, bool explain) {
  BATON_RETURN_IF_ERROR(ScanJsonText(text, limits));
  J value = J::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_discarded()) {
    *out = std::move(value);
    return Status::Ok();
  }
  if (!explain) return InvalidArgumentError("is not valid JSON");
  // Only a rejected text pays for the exception that carries the reason.
  try {
    (void)J::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError("is not valid JSON: " + ParserMessage(e.what()));
  }
  return InvalidArgumentError("is not valid JSON");
}

template <typename J>
std::optional<int64_t> Integer(const J& value, int64_t min, int64_t max) {
  int64_t v = 0;
  if (value.is_number_unsigned()) {
    const uint64_t u = value.template get<uint64_t>();
    if (max < 0 || u > static_cast<uint64_t>(max)) return std::nullopt;
    v = static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    v = value.template get<int64_t>();
  } else {
    return std::nullopt;
  }
  if (v < min || v > max) return std::nullopt;
  return v;
}

}  // namespace

Status ParseJson(std::string_view text, Json* out, const JsonLimits& limits) {
  return Parse(text, out, limits, /*explain=*/true);
}

Status ParseJson(std::string_view text, OrderedJson* out, const JsonLimits& limits) {
  return Parse(text, out, limits, /*explain=*/true);
}

Status ValidateJson(std::string_view text, const JsonLimits& limits) {
  BATON_RETURN_IF_ERROR(ScanJsonText(text, limits));
  // accept() runs the parser with no value behind it: nothing is built.
  if (Json::accept(text)) return Status::Ok();
  Json ignored;
  return Parse(text, &ignored, limits, /*explain=*/true);  // the reason, on the error path only
}

std::string DumpJson(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string ToPayload(const Json& value) { return value.is_null() ? std::string() : DumpJson(value); }

Json FromPayload(std::string_view text) {
  if (text.empty()) return Json();
  Json value;
  if (Parse(text, &value, JsonLimits{}, /*explain=*/false).ok()) return value;
  return Json(util::ToValidUtf8(text));
}

std::optional<int64_t> JsonInteger(const Json& value, int64_t min, int64_t max) { return Integer(value, min, max); }
std::optional<int64_t> JsonInteger(const OrderedJson& value, int64_t min, int64_t max) {
  return Integer(value, min, max);
}

}  // namespace baton
