// The job policy a tenant's grants allow (batch/job_policy.h), and the
// sandbox fields of a job spec.
#include <gtest/gtest.h>

#include "batch/job_policy.h"
#include "batch/job_spec.h"

namespace baton::batch {
namespace {

JobSpec Parse(const Json& j) {
  auto spec = ParseJobSpec(j);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : JobSpec{};
}

TEST(SandboxPolicyTest, ImagesOnlyUnderTheTenantsNamespaceOrAGrantedPrefix) {
  EXPECT_TRUE(ImageUnderPrefix("r:5000/acme/x:1", "r:5000/acme/"));
  EXPECT_FALSE(ImageUnderPrefix("r:5000/acmeevil/x:1", "r:5000/acme/"));
  EXPECT_TRUE(ImageUnderPrefix("docker.io/library/busybox@sha256:ab", "docker.io/library/busybox"));
  EXPECT_TRUE(ImageUnderPrefix("docker.io/library/busybox", "docker.io/library/busybox"));
  EXPECT_FALSE(ImageUnderPrefix("docker.io/library/busyboxx:1", "docker.io/library/busybox"));
  EXPECT_FALSE(ImageUnderPrefix("x", ""));

  const JobGrants none;
  EXPECT_TRUE(CheckJobPolicy(Parse({{"name", "a"}, {"image", "r:5000/acme/x:1"}}), "acme", "r:5000", none).ok());
  Status foreign = CheckJobPolicy(Parse({{"name", "a"}, {"image", "r:5000/globex/x:1"}}), "acme", "r:5000", none);
  EXPECT_EQ(foreign.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(FieldOf(foreign), "image");
  Status sidecar = CheckJobPolicy(
      Parse({{"name", "a"}, {"image", "r:5000/acme/x:1"}, {"sidecars", {{{"name", "s"}, {"image", "elsewhere/y:1"}}}}}),
      "acme", "r:5000", none);
  EXPECT_EQ(FieldOf(sidecar), "sidecars[0].image");
  // Another host spelling of the same registry is not the tenant's namespace.
  EXPECT_FALSE(CheckJobPolicy(Parse({{"name", "a"}, {"image", "localhost:5000/acme/x:1"}}), "acme", "r:5000", none).ok());
  JobGrants samples;
  samples.image_prefixes = {"r:5000/samples/"};
  EXPECT_TRUE(CheckJobPolicy(Parse({{"name", "a"}, {"image", "r:5000/samples/hello:1"}}), "acme", "r:5000", samples).ok());
  // No platform registry: only what is granted.
  EXPECT_FALSE(CheckJobPolicy(Parse({{"name", "a"}, {"image", "r:5000/acme/x:1"}}), "acme", "", none).ok());
}

TEST(SandboxPolicyTest, HostNetworkAndCapabilitiesNeedGrants) {
  JobSpec host = Parse({{"name", "a"}, {"image", "r/acme/x:1"}, {"network", "host"}});
  Status refused = CheckJobPolicy(host, "acme", "r", {});
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(FieldOf(refused), "network");
  JobGrants grants;
  grants.host_network = true;
  EXPECT_TRUE(CheckJobPolicy(host, "acme", "r", grants).ok());

  JobSpec caps = Parse({{"name", "a"}, {"image", "r/acme/x:1"}, {"capabilities", {"CAP_NET_BIND_SERVICE", "NET_RAW"}}});
  EXPECT_EQ(caps.containers[0].capabilities, (std::vector<std::string>{"NET_BIND_SERVICE", "NET_RAW"}));
  grants.capabilities = {"NET_BIND_SERVICE"};
  Status cap = CheckJobPolicy(caps, "acme", "r", grants);
  EXPECT_EQ(cap.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(FieldOf(cap), "capabilities[1]");
  grants.capabilities.push_back("NET_RAW");
  EXPECT_TRUE(CheckJobPolicy(caps, "acme", "r", grants).ok());
}

TEST(SandboxSpecTest, SandboxFieldsParseAndBadOnesAreRefusedNamingTheField) {
  JobSpec s = Parse({{"name", "a"},
                     {"image", "r/acme/x:1"},
                     {"user", "1000:1000"},
                     {"readOnlyRootFs", true},
                     {"pidsLimit", 64},
                     {"secretFiles", {{"tls.key", "k"}}}});
  EXPECT_EQ(s.containers[0].user, "1000:1000");
  EXPECT_TRUE(s.containers[0].read_only_root_fs);
  EXPECT_EQ(s.containers[0].pids_limit, 64);
  EXPECT_EQ(s.containers[0].secret_files.at("tls.key"), "k");
  EXPECT_EQ(Parse({{"name", "a"}, {"image", "r/acme/x:1"}}).containers[0].pids_limit, JobContainer::kDefaultPidsLimit);
  // Redaction keeps the sandbox and hides the secret files' contents.
  Json redacted = RedactedJson(s);
  EXPECT_EQ(redacted["secretFiles"]["tls.key"], "***");
  EXPECT_EQ(redacted["user"], "1000:1000");
  EXPECT_EQ(redacted["pidsLimit"], 64);

  const std::vector<std::pair<Json, std::string>> bad = {
      {{{"user", "root"}}, "user"},
      {{{"user", "1000:"}}, "user"},
      {{{"user", "99999999999"}}, "user"},
      {{{"readOnlyRootFs", "yes"}}, "readOnlyRootFs"},
      {{{"pidsLimit", 4}}, "pidsLimit"},
      {{{"pidsLimit", 4294967808LL}}, "pidsLimit"},
      {{{"capabilities", {"net raw"}}}, "capabilities[0]"},
      {{{"secretFiles", {{"../etc/passwd", "x"}}}}, "secretFiles.../etc/passwd"},
      {{{"secretFiles", {{".env", "x"}}}}, "secretFiles..env"},
      {{{"secretFiles", {{"a", 1}}}}, "secretFiles.a"},
      {{{"secretFiles", {{"a", std::string(70000, 'x')}}}}, "secretFiles.a"},
  };
  for (const auto& [extra, field] : bad) {
    Json j = {{"name", "a"}, {"image", "r/acme/x:1"}};
    for (const auto& [k, v] : extra.items()) j[k] = v;
    auto r = ParseJobSpec(j);
    ASSERT_FALSE(r.ok()) << j.dump();
    EXPECT_EQ(FieldOf(r.status()), field) << r.status().message();
  }
}

}  // namespace
}  // namespace baton::batch
