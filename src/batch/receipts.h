// Run receipts of job attempts (docs/receipts.md; the format and its
// signature: util/receipt.h).
//
// The activity that collects an attempt's end (exit code, OOM kill, logs)
// also signs its receipt with the deployment's key "receipt-signing" (an
// Ed25519 private key kept in the KeyStore like the job-token key: a file
// <data-dir>/receipt-signing.key, or the PostgreSQL key table). The signed
// document is part of that activity's recorded result, so it is durable,
// issued exactly once per attempt that ran a container, and the same on every
// read. An attempt whose containers were never created ran nothing and has
// no receipt.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "baton/history.h"
#include "baton/json.h"
#include "baton/status.h"
#include "runtime/container_runtime.h"
#include "store/key_store.h"
#include "util/receipt.h"

namespace baton::batch {

inline constexpr char kReceiptKeyName[] = "receipt-signing";
inline constexpr int kReceiptVersion = 1;

// The deployment's signer: its key from `keys`, made at the first start.
Result<util::ReceiptSigner> ReceiptSignerFromKeyStore(store::KeyStore& keys);

// SHA-256 (hex) of a job spec as the job orchestration holds it: secret
// values already redacted (RedactedJson), so the hash never depends on them.
std::string SpecHash(const Json& redacted_spec);

// SHA-256 (hex) of the logs kept for an attempt, as "<stream>: <text>\n" per
// line in order (stream "stdout" or "stderr"): what `baton job logs --attempt`
// shows, so a reader can recompute it.
std::string LogDigest(const std::vector<runtime::LogLine>& lines);

// What the collect activity knows about the attempt, and the statement it signs.
struct AttemptFacts {
  std::string job_id;       // the id the tenant sees
  std::string tenant;
  int attempt = 0;
  Json images;              // the pinned image references (digests), in container order
  std::string spec_hash;
  std::string node;         // where the main container ran
  std::string deployment;
  std::optional<TimePoint> started_at, finished_at;
  int exit_code = 0;
  bool oom_killed = false;
  double cpu_limit = 0;
  int64_t memory_limit_bytes = 0;
  std::optional<int64_t> peak_memory_bytes;  // when the runtime measured it
  std::optional<int64_t> cpu_time_ms;        // CPU time used, when measured
  std::optional<std::string> log_digest;     // null: the logs could not be read
  TimePoint issued_at;
};
Json ReceiptStatement(const AttemptFacts& facts);

// The signed receipts recorded in a job orchestration's history, in attempt order.
std::vector<Json> ReceiptsInHistory(const std::vector<HistoryEvent>& history);

}  // namespace baton::batch
