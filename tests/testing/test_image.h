// The FROM-scratch test image (docs/test-images.md), built through the Engine
// API from the static testjob program, pushed to the local registry with the
// platform's credentials and pulled back, as a job's image would be.
#pragma once

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "runtime/docker/docker_runtime.h"

namespace baton::testing {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The registry credentials scripts/docker-up created.
inline runtime::RegistryCredentials LocalRegistryCredentials(const std::string& run_dir) {
  std::string password = ReadWholeFile(run_dir + "/registry/password");
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
  return runtime::RegistryCredentials{"127.0.0.1:5000", "baton", password};
}

struct TestImage {
  std::string tag;     // 127.0.0.1:5000/baton-test/testjob:<pid>
  std::string digest;  // the pulled digest reference
};

// Builds the test image as `tag` on `docker` (its first layer holds the pid
// and `variant`, so that concurrent test processes, and variants, never
// share image ids), pushes it with `credentials`, removes it and pulls it
// back, as a job's image would be.
inline Result<TestImage> BuildAndPushTestImage(runtime::docker::DockerRuntime& docker, const std::string& testjob_path,
                                               const std::string& tag, const runtime::RegistryCredentials& credentials,
                                               const std::string& variant = "") {
  Status ping = docker.Ping();
  if (!ping.ok()) return UnavailableError(ping.ToString() + " — run scripts/docker-up (scripts/test does)");
  const std::string pid = std::to_string(getpid());
  std::string tar = runtime::docker::MakeTar(
      {{"Dockerfile", "FROM scratch\nLABEL baton.test.owner=" + pid +
                          "\nCOPY owner /owner\nCOPY testjob /testjob\nENTRYPOINT [\"/testjob\"]\n"},
       {"owner", pid + variant + "\n"},
       {"testjob", ReadWholeFile(testjob_path)}},
      {"testjob"});
  TestImage image;
  image.tag = tag;
  BATON_RETURN_IF_ERROR(docker.BuildImage(image.tag, tar));
  BATON_RETURN_IF_ERROR(docker.PushImage(image.tag, credentials));
  BATON_RETURN_IF_ERROR(docker.RemoveImage(image.tag));
  int progress_lines = 0;
  auto digest = docker.PullImage(image.tag, credentials, std::chrono::seconds(60),
                                 [&](const std::string&) { ++progress_lines; });
  if (!digest.ok()) return digest.status();
  if (progress_lines == 0) return InternalError("the pull reported no progress");
  image.digest = *digest;
  return image;
}

// The suites' image: 127.0.0.1:5000/baton-test/testjob:<pid> on the shared registry.
inline Result<TestImage> PrepareTestImage(runtime::docker::DockerRuntime& docker, const std::string& testjob_path,
                                          const std::string& run_dir) {
  return BuildAndPushTestImage(docker, testjob_path, "127.0.0.1:5000/baton-test/testjob:" + std::to_string(getpid()),
                               LocalRegistryCredentials(run_dir));
}

// Removes the image and every intermediate image of this process's build.
inline void RemoveTestImage(runtime::docker::DockerRuntime& docker, const TestImage& image) {
  docker.RemoveImage(image.digest).IgnoreError();
  docker.RemoveImage(image.tag).IgnoreError();
  runtime::docker::DockerClient client;
  nlohmann::json filters = {{"label", {"baton.test.owner=" + std::to_string(getpid())}}};
  auto ours = client.Request("GET", "/images/json?all=1&filters=" + runtime::docker::QueryEscape(filters.dump()));
  if (!ours.ok() || ours->status != 200) return;
  nlohmann::json list = nlohmann::json::parse(ours->body, nullptr, false);
  if (!list.is_array()) return;
  for (const auto& i : list) client.Request("DELETE", "/images/" + i.value("Id", "") + "?force=1").status().IgnoreError();
}

// What a test suite that runs the test image shares: the runtime, the image,
// and the status of its preparation (a failure fails every test of the suite
// in SetUp, never skips it). Prepare() in SetUpTestSuite, Release() in
// TearDownTestSuite.
struct SuiteImage {
  runtime::docker::DockerRuntime* docker = nullptr;
  TestImage* image = nullptr;
  Status* setup = nullptr;

  void Prepare(const std::string& testjob_path, const std::string& run_dir) {
    docker = new runtime::docker::DockerRuntime();
    auto prepared = PrepareTestImage(*docker, testjob_path, run_dir);
    setup = new Status(prepared.ok() ? Status::Ok() : prepared.status());
    if (prepared.ok()) image = new TestImage(*prepared);
  }
  void Release() {
    if (image) RemoveTestImage(*docker, *image);
    delete image;
    delete setup;
    delete docker;
    image = nullptr;
    setup = nullptr;
    docker = nullptr;
  }
};

}  // namespace baton::testing
