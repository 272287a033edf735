// The verbs that explain and prove (docs/receipts.md):
//
//   baton job receipt ID [--attempt N]      a job's signed run receipts (tenant key)
//   baton job rightsize NAME [--runs N]     CPU and memory for a job name from its
//                                           recent runs (tenant key)
//   baton receipt public-key                the deployment's receipt public key (PEM)
//   baton receipt verify FILE --public-key PEM   offline: exit 0 when the receipt is
//                                           signed by that key, 8 when it is not
//   baton why ID [--job|--instance]         why a job or an instance waits (docs/why.md)
#pragma once

#include <CLI/CLI.hpp>

#include "app/cli/verb.h"

namespace baton::cli {

// A receipt that does not verify (`baton receipt verify`).
inline constexpr int kExitNotVerified = 8;

// Registers `job receipt` (REQUIRES: the `job` group exists) and the
// `receipt` group and the `why` verb. Returns the groups and verbs it added.
std::vector<CLI::App*> AddInsightVerbs(CLI::App& app, const Io& io);

}  // namespace baton::cli
