#include "app/cli/insight_commands.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "util/receipt.h"
#include "util/url.h"

namespace baton::cli {
namespace {

struct ReceiptOptions {
  GlobalOptions g;
  std::string id;
  int attempt = 0;  // 0 = every attempt
};

void RunJobReceipt(Session& s, const ReceiptOptions& o) {
  HttpRequestSpec spec;
  spec.target = "/api/v1/jobs/" + util::PercentEncode(o.id) + "/receipts";
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  auto receipts = answer->find("receipts");
  if (receipts == answer->end() || !receipts->is_array()) {
    s.Fail(kExitError, "unexpected answer from the server: no array \"receipts\"");
    return;
  }
  if (o.attempt > 0) {
    for (const OJson& doc : *receipts) {
      if (doc.is_object() && doc.contains("receipt") && doc["receipt"].value("attempt", 0) == o.attempt) {
        // Exactly the document, so that it can be saved and verified as it is.
        s.PrintJson(doc);
        return;
      }
    }
    s.Fail(kExitNotFound, "job " + o.id + " has no receipt for attempt " + std::to_string(o.attempt) +
                              " (an attempt gets one when its container has ended)");
    return;
  }
  if (s.json() || receipts->size() != 1) {
    s.PrintJson(*answer);
  } else {
    s.PrintJson((*receipts)[0]);
  }
}

struct RightsizeOptions {
  GlobalOptions g;
  std::string name;
  int runs = 20;
};

std::string Fixed(double v, int decimals) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(decimals);
  o << v;
  return o.str();
}

void RunRightsize(Session& s, const RightsizeOptions& o) {
  HttpRequestSpec spec;
  spec.target = "/api/v1/rightsize?name=" + util::PercentEncode(o.name) + "&runs=" + std::to_string(o.runs);
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
    return;
  }
  const OJson& a = *answer;
  s.out() << "job '" << o.name << "': " << a.value("runs", 0) << " recent run(s), " << a.value("measuredAttempts", 0)
          << " measured attempt(s)\n";
  if (!a.value("enough", false)) {
    s.out() << Text(a, "message") << "\n";
    return;
  }
  const OJson& req = a["requested"];
  const OJson& rec = a["recommended"];
  const OJson& save = a["saving"];
  const OJson& seen = a["observed"];
  auto row = [&](const std::string& what, const std::string& r, const std::string& n, const std::string& d,
                 const std::string& pct) {
    s.out() << what << std::string(what.size() < 10 ? 10 - what.size() : 1, ' ') << r
            << std::string(r.size() < 12 ? 12 - r.size() : 1, ' ') << n
            << std::string(n.size() < 14 ? 14 - n.size() : 1, ' ') << d << " (" << pct << "%)\n";
  };
  s.out() << "          requested   recommended   saving\n";
  row("cpu", Fixed(req.value("cpu", 0.0), 2), Fixed(rec.value("cpu", 0.0), 2), Fixed(save.value("cpu", 0.0), 2),
      Fixed(save.value("cpuPercent", 0.0), 1));
  row("memoryMb", std::to_string(req.value("memoryMb", 0)), std::to_string(rec.value("memoryMb", 0)),
      std::to_string(save.value("memoryMb", 0)), Fixed(save.value("memoryPercent", 0.0), 1));
  s.out() << "observed: peak memory p95 " << Fixed(seen.value("peakMemoryMbP95", 0.0), 1) << " MiB (max "
          << Fixed(seen.value("peakMemoryMbMax", 0.0), 1) << "), average cores p95 "
          << Fixed(seen.value("avgCoresP95", 0.0), 3) << " (max " << Fixed(seen.value("avgCoresMax", 0.0), 3)
          << "), OOM-killed attempts " << seen.value("oomKilled", 0) << "\n";
  s.out() << "recommended = p95 + " << Fixed(a.value("headroom", 0.0) * 100, 0)
          << "% headroom; a negative saving means the job asks for too little\n";
}

struct PublicKeyOptions {
  GlobalOptions g;
};

void RunPublicKey(Session& s, const PublicKeyOptions&) {
  HttpRequestSpec spec;
  spec.target = "/api/v1/receipts/public-key";
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
  } else {
    s.out() << Text(*answer, "publicKeyPem");
  }
}

struct VerifyOptions {
  GlobalOptions g;
  std::string file;
  std::string public_key;
};

void RunVerify(Session& s, const VerifyOptions& o) {
  std::string doc, pem;
  if (!ReadFileOrStdin(o.file, &doc)) {
    s.Fail(kExitUsage, "cannot read " + o.file);
    return;
  }
  if (o.public_key == "-" || !ReadFileOrStdin(o.public_key, &pem)) {
    s.Fail(kExitUsage, "cannot read the public key file " + o.public_key);
    return;
  }
  Status v = util::VerifyReceipt(doc, pem);
  if (v.ok()) {
    s.out() << "OK: the receipt is signed by this public key\n";
    return;
  }
  s.Fail(v.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitNotVerified,
         "NOT VERIFIED: " + v.message());
}

struct WhyOptions {
  GlobalOptions g;
  std::string id;
  bool job = false;
  bool instance = false;
};

bool LooksLikeJobId(const std::string& id) {
  return id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

void RunWhy(Session& s, const WhyOptions& o) {
  const bool job = o.job || (!o.instance && LooksLikeJobId(o.id));
  HttpRequestSpec spec;
  spec.target = (job ? "/api/v1/jobs/" : "/api/v1/instances/") + util::PercentEncode(o.id) + "/why";
  if (!job && !s.global().task_hub.empty()) spec.target += "?taskHub=" + util::PercentEncode(s.global().task_hub);
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
    return;
  }
  auto chain = answer->find("chain");
  if (chain == answer->end() || !chain->is_array() || chain->empty()) {
    s.Fail(kExitError, "unexpected answer from the server: no \"chain\"");
    return;
  }
  s.out() << "why " << (job ? "job " : "instance ") << o.id << ":\n";
  int n = 0;
  for (const OJson& link : *chain) {
    s.out() << "  " << ++n << ". [" << Text(link, "layer") << "] " << OneLine(Text(link, "summary")) << "\n";
  }
  const OJson& root = (*answer)["rootCause"];
  s.out() << "root cause: [" << Text(root, "layer") << "] " << OneLine(Text(root, "summary")) << "\n";
  if (answer->value("cycle", false)) s.out() << "(the chain is a cycle: a deadlock)\n";
  if (answer->value("truncated", false)) s.out() << "(the chain goes on outside what this key may see)\n";
}

}  // namespace

std::vector<CLI::App*> AddInsightVerbs(CLI::App& app, const Io& io) {
  CLI::App* job = app.get_subcommand("job");
  {
    auto [v, o] = AddVerb<ReceiptOptions>(
        job, "receipt", "Print a job's signed run receipts (GET /api/v1/jobs/ID/receipts; docs/receipts.md)",
        false, io, RunJobReceipt);
    v->add_option("id", o->id, "Job id")->required();
    v->add_option("--attempt", o->attempt, "Only this attempt's receipt, exactly as signed")
        ->type_name("N")
        ->check(CLI::Range(1, 1000000));
  }
  {
    auto [v, o] = AddVerb<RightsizeOptions>(
        job, "rightsize",
        "Recommend CPU and memory for a job name from its recent runs (GET /api/v1/rightsize?name=NAME)", false, io,
        RunRightsize);
    v->add_option("name", o->name, "Job name (the spec's \"name\")")->required();
    v->add_option("--runs", o->runs, "How many of its latest finished runs to look at (default 20)")
        ->type_name("N")
        ->check(CLI::Range(1, 100));
  }
  CLI::App* g = AddGroup(app, "receipt", "Run receipts: the deployment's public key, offline verification");
  {
    auto [v, o] = AddVerb<PublicKeyOptions>(g, "public-key", "Print the deployment's receipt public key (PEM)",
                                            false, io, RunPublicKey);
    (void)v;
    (void)o;
  }
  {
    auto [v, o] = AddVerb<VerifyOptions>(
        g, "verify", "Check a receipt offline against a public key (exit 0: valid; 8: not signed by that key)",
        false, io, RunVerify);
    v->add_option("file", o->file, "Receipt document (JSON, as `job receipt --attempt N` prints it; '-' = stdin)")
        ->required();
    v->add_option("--public-key", o->public_key, "PEM file of the public key (`baton receipt public-key`)")
        ->required();
  }
  auto [why, wo] = AddVerb<WhyOptions>(
      &app, "why",
      "Explain why a job or an orchestration instance waits: one chain to the root cause (docs/why.md)", true, io,
      RunWhy);
  why->add_option("id", wo->id, "Job id (16 hex digits) or instance id")->required();
  why->add_flag("--job", wo->job, "ID is a job id");
  why->add_flag("--instance", wo->instance, "ID is an instance id (even if it looks like a job id)");
  return {g, why};
}

}  // namespace baton::cli
