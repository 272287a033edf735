// Job spec parsing: every rejection names its field.
#include "batch/job_spec.h"

#include <gtest/gtest.h>

namespace baton::batch {
namespace {

Json Minimal() { return Json{{"name", "render"}, {"image", "127.0.0.1:5000/team/render:1"}}; }

std::string FieldFor(Json spec) {
  auto parsed = ParseJobSpec(spec);
  EXPECT_FALSE(parsed.ok()) << spec.dump();
  return parsed.ok() ? "" : FieldOf(parsed.status());
}

TEST(JobSpecTest, MinimalSpecGetsDefaults) {
  auto spec = ParseJobSpec(Minimal());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_EQ(spec->containers.size(), 1u);
  EXPECT_EQ(spec->containers[0].name, "main");
  EXPECT_EQ(spec->restart, RestartPolicy::kNever);
  EXPECT_EQ(spec->max_attempts, 1);
  EXPECT_EQ(spec->network, runtime::NetworkMode::kNone);
  EXPECT_EQ(spec->completion, CompletionMode::kExitCode);
}

TEST(JobSpecTest, FullSpecRoundTripsWithSecretsRedacted) {
  Json j = Minimal();
  j["args"] = {"exit", "0"};
  j["env"] = {{"MODE", "fast"}};
  j["secretEnv"] = {{"TOKEN", "hunter2"}};
  j["cpu"] = 1.5;
  j["memoryMb"] = 512;
  j["network"] = "bridge";
  j["ports"] = {8080};
  j["timeoutSeconds"] = 60;
  j["restartPolicy"] = {{"policy", "OnFailure"}, {"maxAttempts", 4}, {"backoffSeconds", 2}};
  j["completion"] = {{"mode", "jobUrl"}, {"port", 8080}};
  j["sidecars"] = {{{"name", "proxy"}, {"image", "127.0.0.1:5000/team/proxy:1"}, {"cpu", 0.25}, {"memoryMb", 64}}};
  j["labels"] = {{"team", "vfx"}};
  j["priority"] = 5;
  auto spec = ParseJobSpec(j);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_DOUBLE_EQ(spec->TotalCpu(), 1.75);
  EXPECT_EQ(spec->TotalMemoryBytes(), (512 + 64) << 20);
  EXPECT_EQ(spec->max_attempts, 4);
  Json redacted = RedactedJson(*spec);
  EXPECT_EQ(redacted["secretEnv"]["TOKEN"], "***");
  EXPECT_EQ(redacted.dump().find("hunter2"), std::string::npos);
  // The redacted form parses back (with the placeholder as the value).
  EXPECT_TRUE(ParseJobSpec(redacted).ok());
}

TEST(JobSpecTest, RejectionsNameTheField) {
  EXPECT_EQ(FieldFor(Json::array()), "body");
  Json j = Minimal();
  j.erase("name");
  EXPECT_EQ(FieldFor(j), "name");
  j = Minimal();
  j.erase("image");
  EXPECT_EQ(FieldFor(j), "image");
  j = Minimal();
  j["cpu"] = 0;
  EXPECT_EQ(FieldFor(j), "cpu");
  j = Minimal();
  j["memoryMb"] = 2;
  EXPECT_EQ(FieldFor(j), "memoryMb");
  j = Minimal();
  j["memroyMb"] = 64;  // a typo is an error, not ignored
  EXPECT_EQ(FieldFor(j), "memroyMb");
  j = Minimal();
  j["env"] = {{"BATON_JOB_TOKEN", "x"}};
  EXPECT_EQ(FieldFor(j), "env.BATON_JOB_TOKEN");
  j = Minimal();
  j["restartPolicy"] = "Sometimes";
  EXPECT_EQ(FieldFor(j), "restartPolicy");
  j = Minimal();
  j["restartPolicy"] = {{"policy", "Never"}, {"maxAttempts", 3}};
  EXPECT_EQ(FieldFor(j), "restartPolicy.maxAttempts");
  j = Minimal();
  j["ports"] = {8080};
  EXPECT_EQ(FieldFor(j), "ports");  // needs bridge
  j = Minimal();
  j["completion"] = "jobUrl";
  EXPECT_EQ(FieldFor(j), "completion.port");
  j = Minimal();
  j["sidecars"] = {{{"name", "main"}, {"image", "x"}}};
  EXPECT_EQ(FieldFor(j), "sidecars[0].name");
  j = Minimal();
  j["sidecars"] = {{{"name", "a"}, {"image", "x"}, {"cpu", -1}}};
  EXPECT_EQ(FieldFor(j), "sidecars[0].cpu");
  j = Minimal();
  j["labels"] = {{"baton.job", "x"}};
  EXPECT_EQ(FieldFor(j), "labels.baton.job");
  j = Minimal();
  j["timeoutSeconds"] = 0;
  EXPECT_EQ(FieldFor(j), "timeoutSeconds");
}

// An image Docker cannot parse used to be accepted (202) and fail later
// with "invalid reference format"; one with CR/LF or '?' went as is into an
// Engine API path. Refused at submit, naming the field.
TEST(JobSpecTest, ImageReferencesFollowDockersGrammar) {
  for (const char* good : {"127.0.0.1:5000/team/render:1", "127.0.0.1:5000/team/render",
                           "localhost:5000/a/b-c_d.e/f__g:v1.2-rc_3",
                           "127.0.0.1:5000/team/render@sha256:65b25bbd39016eb114398fe023e60b3703acb42373f32f5d22a17b138fa022cb",
                           "registry.example.com/team/render:1@sha256:65b25bbd39016eb114398fe023e60b3703acb42373f32f5d22a17b138fa022cb",
                           "busybox", "library/busybox:1.36"}) {
    Json j = Minimal();
    j["image"] = good;
    EXPECT_TRUE(ParseJobSpec(j).ok()) << good;
  }
  for (const char* bad : {"127.0.0.1:5000/team/Render:1", "127.0.0.1:5000/team/../other/x:1",
                          "127.0.0.1:5000/team/x:1\r\nX-Injected:1", "127.0.0.1:5000/team/x@sha256:abc?x",
                          "127.0.0.1:5000/team/x:1#frag", "127.0.0.1:5000//x:1", "127.0.0.1:5000/team/x:",
                          "127.0.0.1:5000/team/x@sha256:65B25BBD39016EB114398FE023E60B3703ACB42373F32F5D22A17B138FA022CB",
                          "/team/x:1", "127.0.0.1:5000/team/x:-1", "127.0.0.1:5000/team/x%2f:1"}) {
    Json j = Minimal();
    j["image"] = bad;
    EXPECT_EQ(FieldFor(j), "image") << bad;
    Json s = Minimal();
    s["sidecars"] = Json::array({{{"name", "side"}, {"image", bad}}});
    EXPECT_EQ(FieldFor(s), "sidecars[0].image") << bad;
  }
}

// docs/job-protocol.md: with "network": "bridge", Baton publishes the job
// URL's port on 127.0.0.1. A spec that did not list it in `ports` used to be
// accepted and fail at run time ("the job port is not published").
TEST(JobSpecTest, AJobUrlOnABridgeHasItsPortPublished) {
  Json j = Minimal();
  j["network"] = "bridge";
  j["completion"] = {{"mode", "jobUrl"}, {"port", 8080}};
  auto spec = ParseJobSpec(j);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->containers[0].ports, std::vector<uint16_t>{8080});
  j["ports"] = {8080, 9090};
  spec = ParseJobSpec(j);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->containers[0].ports, (std::vector<uint16_t>{8080, 9090}));
}

TEST(JobSpecTest, AJobThatCanNeverFitIsRejectedWithTheField) {
  Json j = Minimal();
  j["cpu"] = 3;
  j["memoryMb"] = 128;
  auto spec = ParseJobSpec(j);
  ASSERT_TRUE(spec.ok());
  Status cpu = FitsWithin(*spec, Capacity{2, 1LL << 30}, "this node");
  EXPECT_EQ(cpu.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(FieldOf(cpu), "cpu");
  Status mem = FitsWithin(*spec, Capacity{8, 64 << 20}, "the tenant's quota");
  EXPECT_EQ(FieldOf(mem), "memoryMb");
  EXPECT_TRUE(FitsWithin(*spec, Capacity{4, 1LL << 30}, "this node").ok());
}

}  // namespace
}  // namespace baton::batch

namespace baton::batch {
namespace {

TEST(JobDependenciesSpec, ParsedAndRedactedWithTheirType) {
  Json j = {{"name", "b"},
            {"image", "127.0.0.1:5000/t/x:1"},
            {"dependsOn", {"0123456789abcdef", Json{{"jobId", "fedcba9876543210"}, {"type", "SEQUENTIAL"}}}},
            {"runOnFailure", true}};
  auto spec = ParseJobSpec(j);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_EQ(spec->depends_on.size(), 2u);
  EXPECT_EQ(spec->depends_on[1].job_id, "fedcba9876543210");
  EXPECT_TRUE(spec->run_on_failure);
  Json redacted = RedactedJson(*spec);
  EXPECT_EQ(redacted["dependsOn"][0], (Json{{"jobId", "0123456789abcdef"}, {"type", "SEQUENTIAL"}}));
  EXPECT_EQ(redacted["runOnFailure"], true);
  // What RedactedJson writes parses back to the same (the orchestration's input).
  auto again = ParseJobSpec(redacted);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->depends_on.size(), 2u);
}

TEST(JobDependenciesSpec, RejectionsNameTheField) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {Json("x"), "dependsOn"},
      {Json::array({"ABC"}), "dependsOn[0]"},
      {Json::array({1}), "dependsOn[0]"},
      {Json::array({"0123456789abcdef", "0123456789abcdef"}), "dependsOn[1]"},
      {Json::array({Json{{"jobId", "0123456789abcdef"}, {"type", "ANY"}}}), "dependsOn[0].type"},
      {Json::array({Json{{"jobId", "0123456789abcdef"}, {"extra", 1}}}), "dependsOn[0].extra"},
      {Json(std::vector<std::string>(21, "0123456789abcdef")), "dependsOn"},
  };
  for (const auto& [deps, field] : cases) {
    Json j = {{"name", "b"}, {"image", "127.0.0.1:5000/t/x:1"}, {"dependsOn", deps}};
    auto spec = ParseJobSpec(j);
    ASSERT_FALSE(spec.ok()) << deps.dump();
    EXPECT_EQ(FieldOf(spec.status()), field) << spec.status().ToString();
  }
  Json j = {{"name", "b"}, {"image", "127.0.0.1:5000/t/x:1"}, {"runOnFailure", 1}};
  EXPECT_EQ(FieldOf(ParseJobSpec(j).status()), "runOnFailure");
}

}  // namespace
}  // namespace baton::batch
