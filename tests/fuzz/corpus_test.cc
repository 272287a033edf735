// Every file of the fuzz seed corpus (tests/fuzz/corpus/<target>/) through
// its target, in the normal build: the corpus is a regression suite, and a
// crash the fuzzer once found stays fixed once its input is kept here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz/targets.h"

namespace baton::fuzz {
namespace {

class InputLimitsFuzzCorpus : public ::testing::TestWithParam<Target> {};

TEST_P(InputLimitsFuzzCorpus, EveryCorpusFileRunsClean) {
  const std::filesystem::path dir = std::filesystem::path(BATON_FUZZ_CORPUS) / GetParam().name;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string input = bytes.str();
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(GetParam().run(reinterpret_cast<const uint8_t*>(input.data()), input.size()));
    ++files;
  }
  EXPECT_GE(files, 5) << "a seed corpus of at least a few inputs per target";
}

INSTANTIATE_TEST_SUITE_P(Targets, InputLimitsFuzzCorpus, ::testing::ValuesIn(Targets()),
                         [](const ::testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace baton::fuzz
