#include "batch/receipts.h"

#include <map>

#include "util/receipt.h"

namespace baton::batch {

Result<util::ReceiptSigner> ReceiptSignerFromKeyStore(store::KeyStore& keys) {
  BATON_ASSIGN_OR_RETURN(std::string key, keys.GetOrCreate(kReceiptKeyName, [] {
    return util::ReceiptSigner::NewPrivateKey();
  }));
  auto signer = util::ReceiptSigner::FromPrivateKey(std::move(key));
  if (!signer.ok()) {
    return DataLossError("the receipt key (" + keys.Describe(kReceiptKeyName) + "): " + signer.status().message());
  }
  return signer;
}

std::string SpecHash(const Json& redacted_spec) { return util::Sha256Hex(util::CanonicalReceipt(redacted_spec)); }

std::string LogDigest(const std::vector<runtime::LogLine>& lines) {
  std::string all;
  for (const runtime::LogLine& l : lines) {
    all += l.stream == runtime::LogLine::Stream::kStderr ? "stderr: " : "stdout: ";
    all += l.text;
    all += '\n';
  }
  return util::Sha256Hex(all);
}

Json ReceiptStatement(const AttemptFacts& f) {
  auto time = [](const std::optional<TimePoint>& t) { return t ? Json(FormatIso8601(*t)) : Json(); };
  // Integers, strings, booleans and null only: the canonical form has one
  // spelling (util/receipt.h). The CPU limit is kept in millicores for that.
  return Json{{"version", kReceiptVersion},
              {"jobId", f.job_id},
              {"tenant", f.tenant},
              {"attempt", f.attempt},
              {"images", f.images},
              {"specSha256", f.spec_hash},
              {"node", f.node},
              {"deployment", f.deployment},
              {"startedAt", time(f.started_at)},
              {"finishedAt", time(f.finished_at)},
              {"exitCode", f.exit_code},
              {"oomKilled", f.oom_killed},
              {"resources",
               {{"cpuLimitMillicores", static_cast<int64_t>(f.cpu_limit * 1000 + 0.5)},
                {"memoryLimitBytes", f.memory_limit_bytes},
                {"peakMemoryBytes", f.peak_memory_bytes ? Json(*f.peak_memory_bytes) : Json()},
                {"cpuTimeMs", f.cpu_time_ms ? Json(*f.cpu_time_ms) : Json()}}},
              {"logSha256", f.log_digest ? Json(*f.log_digest) : Json()},
              {"issuedAt", FormatIso8601(f.issued_at)}};
}

std::vector<Json> ReceiptsInHistory(const std::vector<HistoryEvent>& history) {
  std::map<int32_t, bool> collects;  // TaskScheduled ids of collect activities
  std::map<int, Json> by_attempt;
  for (const HistoryEvent& e : history) {
    if (const auto* s = std::get_if<events::TaskScheduled>(&e.body)) {
      if (s->name == "baton.CollectGroup") collects[e.event_id] = true;
    } else if (const auto* c = std::get_if<events::TaskCompleted>(&e.body)) {
      if (!collects.contains(c->task_scheduled_id)) continue;
      Json result = FromPayload(c->result);
      if (!result.is_object() || !result.contains("receipt") || !result["receipt"].is_object()) continue;
      const Json& doc = result["receipt"];
      by_attempt[doc["receipt"].value("attempt", 0)] = doc;
    }
  }
  std::vector<Json> out;
  for (auto& [attempt, doc] : by_attempt) out.push_back(std::move(doc));
  return out;
}

}  // namespace baton::batch
