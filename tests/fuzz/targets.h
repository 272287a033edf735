// The fuzz targets: one function per parser of untrusted input, each run by
// libFuzzer (scripts/fuzz, a clang build with ASan and UBSan) and replayed
// over its seed corpus (corpus/<target>/) by the InputLimitsFuzzCorpus gtest
// in every build, so the corpus is a regression suite.
//
// A target returns 0. A finding is a sanitizer report, an exception that
// escapes, or a broken invariant, which the target turns into an abort
// (FUZZ_CHECK): a value ParseJson accepted nested deeper than its limit, a
// job spec accepted with a field out of range, a history that does not
// survive a round trip, an HTTP answer 500 or an error answer that is not JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

namespace baton::fuzz {

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

// ParseJson (Json and OrderedJson), FromPayload, JsonInteger, DumpJson.
int FuzzJson(const uint8_t* data, size_t size);
// ParseJson, then ParseJobSpec, RedactedJson and FitsWithin.
int FuzzJobSpec(const uint8_t* data, size_t size);
// ParseEvents, ParseEvent and ParseFailure, and the round trip of what parses.
int FuzzHistory(const uint8_t* data, size_t size);
// The bytes as one HTTP request read by the server's reader (ParseRequest),
// then routed through the real route table (management, admin and job APIs
// over a SQLite store in a temp dir, a worker running the scheduler). The
// placeholders @ADMIN@ and @TENANT@ in the bytes become an admin key and a
// tenant key, so the fuzzer reaches the handlers behind authentication.
int FuzzHttp(const uint8_t* data, size_t size);

struct Target {
  const char* name;  // the corpus folder: tests/fuzz/corpus/<name>/
  int (*run)(const uint8_t*, size_t);
};
// gtest names a parameter by this.
inline void PrintTo(const Target& target, std::ostream* os) { *os << target.name; }

inline const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"json", FuzzJson}, {"job_spec", FuzzJobSpec}, {"history", FuzzHistory}, {"http", FuzzHttp}};
  return targets;
}

}  // namespace baton::fuzz
