// The batch layer's wait sources for `baton why` (engine/why.h):
//
//   JobWaitSource       "instance:job.<tenant>.<id>": the job's phase from its
//                       orchestration's custom status (pulling, queued,
//                       starting, running, finishing, backoff, done) and any
//                       runtime/registry fault it waits out; next: quota or
//                       the attempt's container
//   QuotaWaitSource     "quota:<job instance>": the job's place in the
//                       scheduler's queue and who holds the capacity (the
//                       tenant's own quota, or the node's)
//   ContainerWaitSource "container:<group>": the attempt's main container as
//                       the runtime reports it
//
// `viewer_tenant` scopes what is shown of other tenants: "" (an admin) sees
// tenant names and job ids; a tenant sees its own jobs by id and other
// tenants' only as counts and totals.
#pragma once

#include <string>

#include "baton/client.h"
#include "engine/why.h"
#include "runtime/container_runtime.h"

namespace baton::batch {

class JobWaitSource final : public engine::WaitSource {
 public:
  explicit JobWaitSource(Client& client) : client_(client) {}
  bool Owns(std::string_view subject) const override;
  Result<engine::WaitLink> Explain(const std::string& subject) override;

 private:
  Client& client_;
};

class QuotaWaitSource final : public engine::WaitSource {
 public:
  QuotaWaitSource(Client& client, std::string viewer_tenant) : client_(client), viewer_(std::move(viewer_tenant)) {}
  bool Owns(std::string_view subject) const override;
  Result<engine::WaitLink> Explain(const std::string& subject) override;

 private:
  Client& client_;
  std::string viewer_;
};

class ContainerWaitSource final : public engine::WaitSource {
 public:
  explicit ContainerWaitSource(runtime::ContainerRuntime* runtime) : runtime_(runtime) {}
  bool Owns(std::string_view subject) const override;
  Result<engine::WaitLink> Explain(const std::string& subject) override;

 private:
  runtime::ContainerRuntime* runtime_;  // null: containers are not inspected
};

}  // namespace baton::batch
