// What ParseJson's depth and UTF-8 scan costs next to the parse it guards
// (docs/SECURITY.md#input-limits): each document is parsed by nlohmann
// directly, by ParseJson, and scanned alone (a trailing byte that is not
// UTF-8 makes ParseJson read it all and refuse before parsing).
//
//   build/bench/baton_json_bench
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "baton/json.h"

namespace {

using baton::Json;

template <class F>
double MillisPerCall(F f, int reps) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
}

}  // namespace

int main() {
  std::vector<std::pair<const char*, std::string>> docs;
  Json records = Json::array();
  for (int i = 0; records.dump().size() < (1 << 20) - 200; ++i) {
    records.push_back({{"id", "order-" + std::to_string(i)},
                       {"amount", i * 1.5},
                       {"items", {1, 2, 3}},
                       {"note", "caf\u00e9 na\u00efve \u65e5\u672c"}});
  }
  docs.push_back({"records (objects)", records.dump()});
  docs.push_back({"one long string", Json(std::string(1 << 20, 'x')).dump()});
  Json numbers = Json::array();
  for (int i = 0; numbers.dump().size() < (1 << 20); ++i) numbers.push_back(i);
  docs.push_back({"numbers", numbers.dump()});
  docs.push_back({"event payload", R"({"by":"ops","approved":true,"amount":12.5,"tags":["a","b"]})"});
  std::printf("%-18s %9s %12s %12s %12s %8s\n", "document", "bytes", "nlohmann ms", "ParseJson ms", "scan ms", "scan %");
  for (const auto& [name, text] : docs) {
    const int reps = text.size() > 1000 ? 40 : 200000;
    const std::string refused = text + "\xff";
    double raw = MillisPerCall([&] { Json j = Json::parse(text, nullptr, false); }, reps);
    double ours = MillisPerCall([&] { Json j; (void)baton::ParseJson(text, &j); }, reps);
    double scan = MillisPerCall([&] { Json j; (void)baton::ParseJson(refused, &j); }, reps);
    std::printf("%-18s %9zu %12.4f %12.4f %12.4f %7.1f%%\n", name, text.size(), raw, ours, scan, scan / raw * 100);
  }
  return 0;
}
