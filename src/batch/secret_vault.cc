#include "batch/secret_vault.h"

#include <map>
#include <set>

namespace baton::batch {
namespace {

constexpr char kEnv[] = "env";
constexpr char kFile[] = "file";

// Binds the sealed value to its slot: moved to another row, it won't open.
std::string Aad(const std::string& job, const std::string& container, const std::string& kind,
                const std::string& name) {
  std::string aad = job;
  for (const std::string* part : {&container, &kind, &name}) {
    aad.push_back('\0');
    aad += *part;
  }
  return aad;
}

}  // namespace

Result<std::unique_ptr<SecretVault>> SecretVault::Open(store::SecretStore& store, store::KeyStore& keys) {
  BATON_ASSIGN_OR_RETURN(std::string text, keys.GetOrCreate(kKeyName, [] { return util::SecretBox::NewKeysText(); }));
  auto box = util::SecretBox::FromText(text);
  if (!box.ok()) return DataLossError(box.status().message() + " (" + keys.Describe(kKeyName) + ")");
  std::unique_ptr<SecretVault> vault(new SecretVault(store, std::move(*box)));
  BATON_RETURN_IF_ERROR(vault->MigratePlainText());
  return vault;
}

Status SecretVault::MigratePlainText() {
  BATON_ASSIGN_OR_RETURN(std::vector<store::LegacySecret> legacy, store_.ReadLegacyPlaintext());
  if (legacy.empty()) return store_.DropLegacyPlaintext();
  std::map<std::string, std::vector<store::SealedSecret>> by_job;
  for (const store::LegacySecret& l : legacy) {
    BATON_ASSIGN_OR_RETURN(std::string sealed, box_.Seal(l.value, Aad(l.job_id, l.container, kEnv, l.name)));
    by_job[l.job_id].push_back(store::SealedSecret{l.container, kEnv, l.name, std::move(sealed)});
  }
  for (const auto& [job, secrets] : by_job) BATON_RETURN_IF_ERROR(store_.Replace(job, secrets));
  return store_.DropLegacyPlaintext();
}

Status SecretVault::Put(const std::string& job_id, const JobSpec& spec) {
  std::vector<store::SealedSecret> sealed;
  auto add = [&](const std::string& container, const char* kind, const std::string& name,
                 const std::string& value) -> Status {
    BATON_ASSIGN_OR_RETURN(std::string box, box_.Seal(value, Aad(job_id, container, kind, name)));
    sealed.push_back(store::SealedSecret{container, kind, name, std::move(box)});
    return Status::Ok();
  };
  for (const JobContainer& c : spec.containers) {
    for (const auto& [name, value] : c.secret_env) BATON_RETURN_IF_ERROR(add(c.name, kEnv, name, value));
    for (const auto& [name, value] : c.secret_files) BATON_RETURN_IF_ERROR(add(c.name, kFile, name, value));
  }
  return store_.Replace(job_id, sealed);
}

Status SecretVault::Fill(const std::string& job_id, JobSpec* spec) {
  BATON_ASSIGN_OR_RETURN(std::vector<store::SealedSecret> sealed, store_.Get(job_id));
  std::set<std::string> filled;  // "<container>\0<kind>\0<name>"
  for (const store::SealedSecret& s : sealed) {
    BATON_ASSIGN_OR_RETURN(std::string value, box_.Open(s.sealed, Aad(job_id, s.container, s.kind, s.name)));
    for (JobContainer& c : spec->containers) {
      if (c.name != s.container) continue;
      (s.kind == kFile ? c.secret_files : c.secret_env)[s.name] = value;
      filled.insert(Aad("", s.container, s.kind, s.name));
    }
  }
  for (const JobContainer& c : spec->containers) {
    for (const auto* secrets : {&c.secret_env, &c.secret_files}) {
      const char* kind = secrets == &c.secret_env ? kEnv : kFile;
      for (const auto& [name, value] : *secrets) {
        if (!filled.count(Aad("", c.name, kind, name))) {
          return DataLossError("the secret " + std::string(kind == kEnv ? "env " : "file ") + name + " of container '" +
                               c.name + "' of job " + job_id + " is not in the vault (deleted?); the job cannot run "
                               "without it");
        }
      }
    }
  }
  return Status::Ok();
}

Status SecretVault::Delete(const std::string& job_id) { return store_.Delete(job_id); }

Result<std::vector<std::string>> SecretVault::Jobs(const std::string& after, int limit) {
  return store_.Jobs(after, limit);
}

Result<int> SecretVault::Count(const std::string& job_id) {
  BATON_ASSIGN_OR_RETURN(std::vector<store::SealedSecret> sealed, store_.Get(job_id));
  return static_cast<int>(sealed.size());
}

Result<int> SecretVault::ResealAll() {
  int n = 0;
  std::string after;
  for (;;) {
    BATON_ASSIGN_OR_RETURN(std::vector<std::string> jobs, store_.Jobs(after, 500));
    for (const std::string& job : jobs) {
      BATON_ASSIGN_OR_RETURN(std::vector<store::SealedSecret> sealed, store_.Get(job));
      bool changed = false;
      for (store::SealedSecret& s : sealed) {
        if (box_.SealedWithActiveKey(s.sealed)) continue;
        const std::string aad = Aad(job, s.container, s.kind, s.name);
        BATON_ASSIGN_OR_RETURN(std::string plain, box_.Open(s.sealed, aad));
        BATON_ASSIGN_OR_RETURN(s.sealed, box_.Seal(plain, aad));
        changed = true;
        ++n;
      }
      if (changed) BATON_RETURN_IF_ERROR(store_.Replace(job, sealed));
    }
    if (jobs.size() < 500) break;
    after = jobs.back();
  }
  return n;
}

}  // namespace baton::batch
