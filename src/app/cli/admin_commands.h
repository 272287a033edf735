// The operator's view of a deployment (admin key; docs/cli.md#nodes):
//
//   baton nodes [--state up|stopped|gone|unknown]   every node of the task hub's
//                                   store: id, state, roles, version, started,
//                                   last heartbeat, leases held (GET /api/v1/admin/nodes)
//   baton workers [--hub TENANT]    connected SDK workers per task hub, per node,
//                                   and this node's streams (GET /api/v1/admin/workers)
#pragma once

#include <CLI/CLI.hpp>

#include "app/cli/verb.h"

namespace baton::cli {

// Registers `nodes` and `workers`; returns them.
std::vector<CLI::App*> AddAdminVerbs(CLI::App& app, const Io& io);

}  // namespace baton::cli
