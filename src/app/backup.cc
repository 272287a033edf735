#include "app/backup.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "baton/clock.h"
#include "baton/json.h"
#include "store/sqlite/sqlite_backup.h"
#include "util/hex.h"

namespace baton::app {
namespace {

namespace fs = std::filesystem;

constexpr char kManifest[] = "baton-backup.json";
constexpr char kFormat[] = "baton-backup";
constexpr int kVersion = 1;
constexpr size_t kBlock = 512;
constexpr size_t kMaxManifestBytes = 1 << 20;
// The archive's members: the databases (under these names, whatever the task
// hub's path) and the small files beside them.
const std::set<std::string>& Databases() {
  static const std::set<std::string> kNames = {"baton.db", "tenants.db", "job-logs.db", "secrets.db"};
  return kNames;
}
constexpr int64_t kMaxKeyFileBytes = 1 << 20;

bool IsKeyFileName(const std::string& name) {
  if (name == "node-id") return true;
  if (name.size() < 5 || name.size() > 100 || !name.ends_with(".key") || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

Status Errno(const std::string& what) { return UnavailableError(what + ": " + std::strerror(errno)); }

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Status WriteAll(int fd, const void* data, size_t size, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("write " + what);
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Reads exactly `size` bytes; DataLoss at a premature end.
Status ReadAll(int fd, void* data, size_t size, const std::string& what) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read " + what);
    if (n == 0) return Status(StatusCode::kDataLoss, what + " ends too early (a truncated backup?)");
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return Errno("fsync " + dir);
  return Status::Ok();
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string Hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &size);
    return util::HexEncode(std::string(reinterpret_cast<char*>(digest), size));
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

Result<std::string> FileSha256(const std::string& path, int64_t* size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("open " + path);
  Sha256 sha;
  std::vector<char> buf(1 << 20);
  *size = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read " + path);
    if (n == 0) break;
    sha.Update(buf.data(), static_cast<size_t>(n));
    *size += n;
  }
  return sha.Hex();
}

// ---- POSIX tar (ustar) ----

void Octal(char* field, size_t width, uint64_t value) {
  // width-1 octal digits and a NUL.
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

std::string TarHeader(const std::string& name, int64_t size) {
  std::string h(kBlock, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 99));
  Octal(&h[100], 8, 0600);
  Octal(&h[108], 8, 0);
  Octal(&h[116], 8, 0);
  if (size < (int64_t{1} << 33)) {
    Octal(&h[124], 12, static_cast<uint64_t>(size));
  } else {
    // GNU base-256: the top bit set, the size big-endian in the rest.
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((static_cast<uint64_t>(size) >> (8 * i)) & 0xff);
  }
  Octal(&h[136], 12, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                SystemClock()->Now().time_since_epoch())
                                                .count()));
  h[156] = '0';
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  Octal(&h[148], 7, sum);
  h[155] = ' ';
  return h;
}

struct TarEntry {
  std::string name;
  int64_t size = 0;
};

// The next member's header; nullopt at the end-of-archive block.
Result<std::optional<TarEntry>> ReadTarHeader(int fd) {
  std::string h(kBlock, '\0');
  BATON_RETURN_IF_ERROR(ReadAll(fd, h.data(), kBlock, "the backup"));
  if (std::all_of(h.begin(), h.end(), [](char c) { return c == '\0'; })) return std::optional<TarEntry>();
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  unsigned stored = 0;
  for (size_t i = 148; i < 156 && h[i] >= '0' && h[i] <= '7'; ++i) stored = stored * 8 + (h[i] - '0');
  if (sum != stored || h.compare(257, 5, "ustar") != 0) {
    return Status(StatusCode::kDataLoss, "the backup is not a tar archive written by `baton backup` (bad header)");
  }
  if (h[156] != '0' && h[156] != '\0') {
    return InvalidArgumentError("the backup holds something other than regular files");
  }
  TarEntry e;
  e.name = std::string(h.data(), strnlen(h.data(), 100));
  if (h[345] != '\0') return InvalidArgumentError("the backup holds a member in a directory");
  if (static_cast<unsigned char>(h[124]) == 0x80) {
    for (int i = 125; i < 136; ++i) {
      if (e.size > (int64_t{1} << 52)) return InvalidArgumentError("a member of the backup is too large");
      e.size = (e.size << 8) | static_cast<unsigned char>(h[i]);
    }
  } else {
    for (size_t i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; ++i) e.size = e.size * 8 + (h[i] - '0');
  }
  return std::optional<TarEntry>(e);
}

// ---- Backup ----

struct Member {
  std::string name;  // in the archive
  std::string path;  // on disk (staged copy or the file itself)
  int64_t size = 0;
  std::string sha256;
};

Status AppendMember(int out, const Member& m) {
  const std::string header = TarHeader(m.name, m.size);
  BATON_RETURN_IF_ERROR(WriteAll(out, header.data(), header.size(), "the backup"));
  Fd in(::open(m.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return Errno("open " + m.path);
  std::vector<char> buf(1 << 20);
  int64_t left = m.size;
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(buf.size())));
    BATON_RETURN_IF_ERROR(ReadAll(in.get(), buf.data(), want, m.path));
    BATON_RETURN_IF_ERROR(WriteAll(out, buf.data(), want, "the backup"));
    left -= static_cast<int64_t>(want);
  }
  const size_t pad = (kBlock - static_cast<size_t>(m.size % kBlock)) % kBlock;
  const std::string zeros(pad, '\0');
  return WriteAll(out, zeros.data(), zeros.size(), "the backup");
}

// A temporary directory removed with everything in it.
class StagingDir {
 public:
  static Result<StagingDir> Make(const std::string& parent, const std::string& stem) {
    std::string t = (fs::path(parent) / (stem + "-XXXXXX")).string();
    if (::mkdtemp(t.data()) == nullptr) return Errno("create a temporary directory in " + parent);
    StagingDir d;
    d.path_ = t;
    return d;
  }
  StagingDir() = default;
  StagingDir(StagingDir&& o) noexcept : path_(std::exchange(o.path_, "")) {}
  ~StagingDir() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

Result<BackupSummary> Backup(const std::string& data_dir, const std::string& hub_path, const std::string& file) {
  std::error_code ec;
  if (!fs::exists(hub_path, ec)) {
    return NotFoundError("no task hub at " + hub_path + " (is --data-dir the server's data dir?)");
  }
  const fs::path target = fs::absolute(file, ec);
  const std::string parent = target.parent_path().string();
  BATON_ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Make(parent, "." + target.filename().string()));
  std::vector<Member> members;
  BackupSummary summary;
  // One database after the other, the task hub first; each copy is one
  // commit's state of its database.
  for (const std::string& name : {std::string("baton.db"), std::string("tenants.db"), std::string("secrets.db"),
                                  std::string("job-logs.db")}) {
    const std::string source = name == "baton.db" ? hub_path : data_dir + "/" + name;
    if (!fs::exists(source, ec)) continue;  // a store the server never opened
    Member m{name, staging.path() + "/" + name, 0, ""};
    BATON_RETURN_IF_ERROR(store::BackupSqliteDatabase(source, m.path));
    ++summary.databases;
    members.push_back(std::move(m));
  }
  for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!IsKeyFileName(name) || !entry.is_regular_file(ec) || entry.is_symlink(ec)) continue;
    if (entry.file_size(ec) > static_cast<uintmax_t>(kMaxKeyFileBytes)) continue;
    members.push_back(Member{name, entry.path().string(), 0, ""});
    ++summary.key_files;
  }
  if (ec) return UnavailableError("cannot list " + data_dir + ": " + ec.message());
  Json manifest = {{"format", kFormat},
                   {"version", kVersion},
                   {"created", FormatIso8601(SystemClock()->Now())},
                   {"files", Json::array()}};
  for (Member& m : members) {
    BATON_ASSIGN_OR_RETURN(m.sha256, FileSha256(m.path, &m.size));
    summary.bytes += m.size;
    manifest["files"].push_back({{"name", m.name}, {"size", m.size}, {"sha256", m.sha256}});
  }
  const std::string manifest_path = staging.path() + "/" + kManifest;
  {
    const std::string text = manifest.dump(2) + "\n";
    Fd fd(::open(manifest_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) return Errno("create " + manifest_path);
    BATON_RETURN_IF_ERROR(WriteAll(fd.get(), text.data(), text.size(), manifest_path));
  }
  int64_t manifest_size = 0;
  BATON_RETURN_IF_ERROR(FileSha256(manifest_path, &manifest_size).status());
  const std::string tmp = staging.path() + "/archive.tar";
  {
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (out.get() < 0) return Errno("create " + tmp);
    BATON_RETURN_IF_ERROR(AppendMember(out.get(), Member{kManifest, manifest_path, manifest_size, ""}));
    for (const Member& m : members) BATON_RETURN_IF_ERROR(AppendMember(out.get(), m));
    const std::string end(2 * kBlock, '\0');
    BATON_RETURN_IF_ERROR(WriteAll(out.get(), end.data(), end.size(), "the backup"));
    if (::fsync(out.get()) != 0) return Errno("fsync the backup");
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) return Errno("move the backup to " + target.string());
  BATON_RETURN_IF_ERROR(SyncDir(parent));
  return summary;
}

Result<BackupSummary> Restore(const std::string& file, const std::string& data_dir, const std::string& hub_path,
                              bool force) {
  Fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return errno == ENOENT ? NotFoundError("no backup at " + file) : Errno("open " + file);
  std::error_code ec;
  // The task hub's lock (SqliteStore): held by a running server. Held here
  // from before the files move until after, it keeps a server from starting
  // meanwhile; a data dir that does not exist yet is created only once the
  // archive passed every check.
  const std::string lock_path = hub_path + ".lock";
  auto take_lock = [&](bool create) -> Result<Fd> {
    Fd lock(::open(lock_path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600));
    if (lock.get() < 0) {
      if (!create && errno == ENOENT) return Fd();
      return Errno("open " + lock_path);
    }
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
      return FailedPreconditionError("a server is using " + hub_path + ": stop `baton serve` first");
    }
    return lock;
  };
  BATON_ASSIGN_OR_RETURN(Fd early_lock, take_lock(false));
  if (fs::exists(hub_path, ec) && !force) {
    return FailedPreconditionError(hub_path + " already holds a task hub: restore into an empty --data-dir, or add "
                                   "--force to replace it");
  }
  fs::path dir_path = fs::absolute(data_dir, ec).lexically_normal();
  if (!dir_path.has_filename()) dir_path = dir_path.parent_path();  // "dir/"
  const fs::path parent = dir_path.parent_path();

  // Read and check everything into a staging dir first.
  BATON_ASSIGN_OR_RETURN(StagingDir staging,
                         StagingDir::Make(parent.string(), "." + dir_path.filename().string() + "-restore"));
  BATON_ASSIGN_OR_RETURN(std::optional<TarEntry> first, ReadTarHeader(in.get()));
  if (!first || first->name != kManifest || first->size <= 0 ||
      first->size > static_cast<int64_t>(kMaxManifestBytes)) {
    return InvalidArgumentError(file + " is not a backup written by `baton backup` (no " + kManifest + " first)");
  }
  std::string text(static_cast<size_t>(first->size), '\0');
  BATON_RETURN_IF_ERROR(ReadAll(in.get(), text.data(), text.size(), file));
  {
    std::string pad((kBlock - text.size() % kBlock) % kBlock, '\0');
    BATON_RETURN_IF_ERROR(ReadAll(in.get(), pad.data(), pad.size(), file));
  }
  Json manifest;
  if (!ParseJson(text, &manifest).ok() || !manifest.is_object() || manifest.value("format", "") != kFormat ||
      !manifest.contains("files") || !manifest["files"].is_array()) {
    return InvalidArgumentError(file + ": its manifest is not a Baton backup's");
  }
  if (!manifest["version"].is_number_integer() || manifest["version"].get<int>() != kVersion) {
    return InvalidArgumentError(file + ": backup format version " + manifest["version"].dump() +
                                " is not one this baton reads (" + std::to_string(kVersion) + ")");
  }
  struct Expected {
    int64_t size;
    std::string sha256;
    bool seen = false;
  };
  std::map<std::string, Expected> expected;
  for (const Json& f : manifest["files"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("size") ||
        !f["size"].is_number_integer() || !f.contains("sha256") || !f["sha256"].is_string()) {
      return InvalidArgumentError(file + ": a manifest entry lacks name, size or sha256");
    }
    const std::string name = f["name"].get<std::string>();
    if (!Databases().count(name) && !IsKeyFileName(name)) {
      return InvalidArgumentError(file + ": member '" + name.substr(0, 100) + "' is not a file Baton keeps");
    }
    if (f["size"].get<int64_t>() < 0 || (IsKeyFileName(name) && f["size"].get<int64_t>() > kMaxKeyFileBytes)) {
      return InvalidArgumentError(file + ": member '" + name + "' has a bad size");
    }
    expected[name] = Expected{f["size"].get<int64_t>(), f["sha256"].get<std::string>()};
  }
  if (!expected.count("baton.db")) return InvalidArgumentError(file + ": the backup holds no task hub (baton.db)");
  BackupSummary summary;
  std::vector<char> buf(1 << 20);
  for (;;) {
    BATON_ASSIGN_OR_RETURN(std::optional<TarEntry> entry, ReadTarHeader(in.get()));
    if (!entry) break;
    auto it = expected.find(entry->name);
    if (it == expected.end() || it->second.seen || it->second.size != entry->size) {
      return InvalidArgumentError(file + ": member '" + entry->name.substr(0, 100) +
                                  "' is not the one its manifest names");
    }
    it->second.seen = true;
    const std::string path = staging.path() + "/" + entry->name;
    Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (out.get() < 0) return Errno("create " + path);
    Sha256 sha;
    int64_t left = entry->size;
    while (left > 0) {
      const size_t want = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(buf.size())));
      BATON_RETURN_IF_ERROR(ReadAll(in.get(), buf.data(), want, file));
      sha.Update(buf.data(), want);
      BATON_RETURN_IF_ERROR(WriteAll(out.get(), buf.data(), want, path));
      left -= static_cast<int64_t>(want);
    }
    if (sha.Hex() != it->second.sha256) {
      return Status(StatusCode::kDataLoss, file + ": member '" + entry->name + "' does not match its digest");
    }
    if (::fsync(out.get()) != 0) return Errno("fsync " + path);
    std::string pad((kBlock - static_cast<size_t>(entry->size % kBlock)) % kBlock, '\0');
    BATON_RETURN_IF_ERROR(ReadAll(in.get(), pad.data(), pad.size(), file));
    summary.bytes += entry->size;
  }
  for (const auto& [name, e] : expected) {
    if (!e.seen) return Status(StatusCode::kDataLoss, file + ": member '" + name + "' is missing (truncated?)");
  }
  for (const auto& [name, e] : expected) {
    if (!Databases().count(name)) continue;
    const std::string path = staging.path() + "/" + name;
    BATON_RETURN_IF_ERROR(store::CheckSqliteDatabase(path));
    BATON_RETURN_IF_ERROR(store::UseWalMode(path));
  }

  // Everything checked: move the files into place.
  fs::create_directories(data_dir, ec);
  if (ec) return UnavailableError("cannot create " + data_dir + ": " + ec.message());
  ::chmod(data_dir.c_str(), 0700);
  Fd lock = std::move(early_lock);  // a second flock of ours would conflict with it
  if (lock.get() < 0) {
    BATON_ASSIGN_OR_RETURN(lock, take_lock(true));
  }
  if (fs::exists(hub_path, ec) && !force) {
    return FailedPreconditionError(hub_path + " already holds a task hub: restore into an empty --data-dir, or add "
                                   "--force to replace it");
  }
  for (const auto& [name, e] : expected) {
    const std::string dest = name == "baton.db" ? hub_path : data_dir + "/" + name;
    if (Databases().count(name)) {
      for (const char* suffix : {"-wal", "-shm"}) fs::remove(dest + suffix, ec);
      ++summary.databases;
    } else {
      ++summary.key_files;
    }
    if (::rename((staging.path() + "/" + name).c_str(), dest.c_str()) != 0) {
      return Errno("move " + name + " into place");
    }
  }
  BATON_RETURN_IF_ERROR(SyncDir(data_dir));
  if (fs::path(hub_path).parent_path() != fs::path(data_dir)) {
    BATON_RETURN_IF_ERROR(SyncDir(fs::path(hub_path).parent_path().string()));
  }
  return summary;
}

}  // namespace baton::app
