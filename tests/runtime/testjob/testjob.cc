// baton_testjob: the one process of the test containers, whose images are built
// FROM scratch (see docs/test-images.md). It is linked fully static and uses only
// syscalls and POSIX sockets with numeric addresses: a scratch image has no shell,
// no /etc/hosts and no NSS modules.
//
// Usage (argv[1] picks the mode):
//   sleep SECONDS          sleep, then exit 0
//   exit CODE              print "exiting with CODE", exit CODE (0..255)
//   fail-first-attempt INDEX
//                          exit 1 when $BATON_ARRAY_INDEX is INDEX and $BATON_JOB_ATTEMPT is 1,
//                          else exit 0 (an array job's index that fails once)
//   print N                N lines "progress i/N" on stdout and N "warning i/N" on stderr,
//                          alternating, then exit 0
//   env NAME...            print NAME=value (or "NAME unset") for each name
//   alloc MEGABYTES [DELAY_MS [HOLD_MS]]
//                          after DELAY_MS (default 0), allocate and touch memory 1 MiB at a
//                          time, progress every 16 MiB, then hold it HOLD_MS (default 0);
//                          exit 0 if not OOM-killed first
//   serve PORT [ADDR]      HTTP/1.1 on ADDR:PORT (default 0.0.0.0, as it runs in its own
//                          network namespace): GET /status, POST /start, GET /ping
//   fetch HOST PORT PATH   GET PATH from HOST:PORT (numeric IPv4), print the body; exit 0
//                          on HTTP 200, else 1; retries connecting for up to 10 s
//   callback N [STATUS [EXITCODE]]
//                          a batch job with callback completion: POSTs N progress reports
//                          {"progress":{"step":i,"of":N}} ~200 ms apart to
//                          $BATON_CALLBACK_URL with "Authorization: Bearer $BATON_JOB_TOKEN",
//                          then {"status":STATUS,"exitCode":EXITCODE} (default Completed, 0;
//                          STATUS "none" sends no final report); prints "callback WHAT: HTTP
//                          CODE" per report, and the answer's body when it is not 2xx; exits
//                          EXITCODE, or 1 if a report could not be delivered (each retries
//                          connecting for up to 10 s), or 2 if either variable is missing or
//                          the URL is not http://A.B.C.D[:PORT][/PATH]
//   sandbox                what the container may do: "uid=U gid=G", "capeff=HEX" and
//                          "nonewprivs=N" (from /proc/self/status), "raw=denied|opened" (an
//                          AF_INET raw socket), "packet=denied|opened" (an AF_PACKET socket),
//                          "rootfs=writable|readonly" (creating /.baton-probe), "pids.max=N"
//                          (the pids cgroup's limit, when readable); exits 0
//   sniff SECONDS NEEDLE   opens an AF_PACKET socket and reads every frame for SECONDS,
//                          printing "captured NEEDLE" for each frame holding NEEDLE; prints
//                          "sniff: denied: ERROR" and exits 0 when the socket cannot be
//                          opened, exits 3 when it could
//   cat FILE...            prints each file's content as "FILE: CONTENT" (or "FILE: ERROR")
//   fork N                 starts N children that sleep 2 s, prints "forked K of N"; exits 0
//   connect HOST PORT      one TCP connect to HOST:PORT (numeric IPv4) within 3 s; prints
//                          "connected" (exit 0) or "connect: ERROR" (exit 1)
//   callback-raw TOKEN BODY
//                          one POST of BODY to $BATON_CALLBACK_URL with "Authorization: Bearer
//                          TOKEN" (taken literally, to forge tokens); prints "HTTP CODE" and the
//                          body; exits 0 on 2xx, else 1 (2 for a missing or malformed URL)
//   callback-hold N SECONDS
//                          opens up to N connections to $BATON_CALLBACK_SOCKET (raising its
//                          open-files limit to the hard one first) and keeps them for SECONDS,
//                          sending one byte of a request line on each every 5 s; prints "held
//                          K of N" once opened, then "alive K" every 5 s; exits 0, or 2 without
//                          the socket variable (a hostile job's way of starving the server of
//                          file descriptors)
// Bad arguments print this usage and exit 2.
//
// SIGTERM and SIGINT end every mode at once: `serve` exits 0, the others 143 (what a
// shell reports for a TERM death). The handler matters because the process is PID 1 in
// its container, and PID 1 does not die of a signal it has no handler for, so without
// it `docker stop` would wait out its whole grace period.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr int kUsageExitCode = 2;
constexpr int kTermExitCode = 143;
constexpr size_t kMiB = 1024 * 1024;
constexpr int kAllocReportEveryMiB = 16;
constexpr int64_t kFakeJobMillis = 2000;
constexpr int64_t kConnectDeadlineMillis = 10000;
constexpr int64_t kConnectRetryMillis = 200;
constexpr int64_t kCallbackResendMillis = 30000;
constexpr int64_t kMinConnectAttemptMillis = 100;
constexpr int64_t kCallbackIntervalMillis = 200;
constexpr size_t kMaxRequestHeaderBytes = 16 * 1024;

constexpr const char* kUsage =
    "usage: baton_testjob MODE ARGS...\n"
    "  sleep SECONDS\n"
    "  exit CODE\n"
    "  print N\n"
    "  env NAME...\n"
    "  alloc MEGABYTES [DELAY_MS]\n"
    "  serve PORT [ADDR]\n"
    "  fetch HOST PORT PATH\n"
    "  callback N [STATUS [EXITCODE]]   (env BATON_CALLBACK_URL, BATON_JOB_TOKEN)\n"
    "  callback-raw TOKEN BODY          (env BATON_CALLBACK_URL)\n"
    "  callback-hold N SECONDS          (env BATON_CALLBACK_SOCKET)\n"
    "  sandbox\n"
    "  sniff SECONDS NEEDLE\n"
    "  cat FILE...\n"
    "  fork N\n"
    "  connect HOST PORT\n";

int Usage() {
  std::fputs(kUsage, stderr);
  return kUsageExitCode;
}

// Prints one line and flushes, so a log reader sees each line as soon as it is written,
// whatever the buffering of a pipe or a container log driver.
void Line(std::FILE* out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void Line(std::FILE* out, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vfprintf(out, format, args);
  va_end(args);
  std::fputc('\n', out);
  std::fflush(out);
}

// Parses the whole of `text` as a base-10 integer in [min, max].
bool ParseInt(std::string_view text, int64_t min, int64_t max, int64_t* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end && *value >= min && *value <= max;
}

int64_t NowMillis() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void SleepMillis(int64_t millis) {
  timespec ts{static_cast<time_t>(millis / 1000), static_cast<long>(millis % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

volatile sig_atomic_t term_exit_code = kTermExitCode;

extern "C" void OnTerm(int) { _exit(term_exit_code); }

void InstallTermHandler(int exit_code) {
  term_exit_code = exit_code;
  struct sigaction action {};
  action.sa_handler = OnTerm;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool ParseIpv4(const char* host, int64_t port, sockaddr_in* addr) {
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_port = htons(static_cast<uint16_t>(port));
  return inet_pton(AF_INET, host, &addr->sin_addr) == 1;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// ---- sleep, exit, print, env, alloc ----

int RunSleep(int argc, char** argv) {
  int64_t seconds = 0;
  if (argc != 3 || !ParseInt(argv[2], 0, 365LL * 24 * 3600, &seconds)) return Usage();
  SleepMillis(seconds * 1000);
  return 0;
}

int RunExit(int argc, char** argv) {
  int64_t code = 0;
  if (argc != 3 || !ParseInt(argv[2], 0, 255, &code)) return Usage();
  Line(stdout, "exiting with %d", static_cast<int>(code));
  return static_cast<int>(code);
}

// An index of an array job that fails its first attempt: exit 1 when
// $BATON_ARRAY_INDEX is INDEX and $BATON_JOB_ATTEMPT is 1, else exit 0.
int RunFailFirstAttempt(int argc, char** argv) {
  int64_t index = 0;
  if (argc != 3 || !ParseInt(argv[2], 0, 1000000, &index)) return Usage();
  const char* mine = std::getenv("BATON_ARRAY_INDEX");
  const char* attempt = std::getenv("BATON_JOB_ATTEMPT");
  const bool fail = mine != nullptr && attempt != nullptr && std::string_view(mine) == argv[2] &&
                    std::string_view(attempt) == "1";
  Line(stdout, "index %s attempt %s: %s", mine ? mine : "unset", attempt ? attempt : "unset", fail ? "failing" : "ok");
  return fail ? 1 : 0;
}

int RunPrint(int argc, char** argv) {
  int64_t n = 0;
  if (argc != 3 || !ParseInt(argv[2], 0, 10000000, &n)) return Usage();
  for (int64_t i = 1; i <= n; ++i) {
    Line(stdout, "progress %lld/%lld", static_cast<long long>(i), static_cast<long long>(n));
    Line(stderr, "warning %lld/%lld", static_cast<long long>(i), static_cast<long long>(n));
  }
  return 0;
}

int RunEnv(int argc, char** argv) {
  if (argc < 3) return Usage();
  for (int i = 2; i < argc; ++i) {
    const char* value = std::getenv(argv[i]);
    if (value == nullptr) {
      Line(stdout, "%s unset", argv[i]);
    } else {
      Line(stdout, "%s=%s", argv[i], value);
    }
  }
  return 0;
}

int RunAlloc(int argc, char** argv) {
  int64_t megabytes = 0;
  int64_t delay_ms = 0;
  int64_t hold_ms = 0;
  if (argc < 3 || argc > 5 || !ParseInt(argv[2], 0, 1024 * 1024, &megabytes)) return Usage();
  if (argc >= 4 && !ParseInt(argv[3], 0, 60000, &delay_ms)) return Usage();
  if (argc == 5 && !ParseInt(argv[4], 0, 600000, &hold_ms)) return Usage();
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  // Blocks are kept (never freed) so the resident set only grows, and every page is
  // written, so the kernel really backs it and a memory limit really triggers.
  std::vector<char*> blocks;
  blocks.reserve(static_cast<size_t>(megabytes));
  for (int64_t i = 1; i <= megabytes; ++i) {
    char* block = static_cast<char*>(std::malloc(kMiB));
    if (block == nullptr) {
      Line(stderr, "malloc failed after %lld MiB", static_cast<long long>(i - 1));
      return 1;
    }
    std::memset(block, static_cast<int>(i & 0xff) | 1, kMiB);
    blocks.push_back(block);
    if (i % kAllocReportEveryMiB == 0) {
      Line(stdout, "allocated %lld MiB", static_cast<long long>(i));
    }
  }
  Line(stdout, "allocated %lld MiB, done", static_cast<long long>(megabytes));
  if (hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  return 0;
}

// ---- serve ----

// The fake job: idle until the first POST /start, then running for kFakeJobMillis with
// progress 0..100, then done. Later POSTs are accepted and change nothing, so a caller
// that retries /start (at-least-once delivery) does not restart the job.
class FakeJob {
 public:
  void Start() {
    if (started_at_ < 0) started_at_ = NowMillis();
  }

  // The job-URL protocol's answer (docs/job-protocol.md): {"status": "Idle" |
  // "Running" | "Completed", "progress": {"pct": 0..100}}.
  std::string StatusJson() const {
    const char* state = "Idle";
    int64_t progress = 0;
    if (started_at_ >= 0) {
      int64_t elapsed = NowMillis() - started_at_;
      if (elapsed >= kFakeJobMillis) {
        state = "Completed";
        progress = 100;
      } else {
        state = "Running";
        progress = elapsed * 100 / kFakeJobMillis;
      }
    }
    return std::string("{\"status\":\"") + state + "\",\"progress\":{\"pct\":" + std::to_string(progress) +
           "}}";
  }

 private:
  int64_t started_at_ = -1;
};

void Respond(int fd, int code, const char* reason, const char* content_type,
             const std::string& body) {
  std::string response =
      "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + content_type +
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  SendAll(fd, response);
}

// Reads one request's header block (and discards a Content-Length body so closing the
// socket does not reset the connection under the client). Returns false on a malformed,
// oversized or abandoned request.
bool ReadRequest(int fd, std::string* method, std::string* target) {
  std::string buffer;
  size_t header_end = std::string::npos;
  char chunk[4096];
  while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > kMaxRequestHeaderBytes) return false;
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  size_t line_end = buffer.find("\r\n");
  std::string_view line(buffer.data(), line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  *method = std::string(line.substr(0, sp1));
  *target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));

  int64_t content_length = 0;
  std::string headers = buffer.substr(0, header_end);
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t at = headers.find("\r\ncontent-length:");
  if (at != std::string::npos) {
    size_t value = at + std::strlen("\r\ncontent-length:");
    while (value < headers.size() && headers[value] == ' ') ++value;
    size_t value_end = headers.find("\r\n", value);
    std::string_view digits(headers.data() + value,
                            (value_end == std::string::npos ? headers.size() : value_end) - value);
    if (!ParseInt(digits, 0, 1 << 20, &content_length)) return false;
  }
  int64_t remaining = content_length - static_cast<int64_t>(buffer.size() - header_end - 4);
  while (remaining > 0) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    remaining -= n;
  }
  return true;
}

void HandleConnection(int fd, FakeJob* job) {
  // A client that connects and says nothing must not block the server for long.
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string method, target;
  if (!ReadRequest(fd, &method, &target)) {
    Respond(fd, 400, "Bad Request", "text/plain", "bad request\n");
    return;
  }
  std::string path = target.substr(0, target.find('?'));
  if (method == "GET" && path == "/status") {
    Respond(fd, 200, "OK", "application/json", job->StatusJson());
  } else if (method == "POST" && path == "/start") {
    job->Start();
    Respond(fd, 202, "Accepted", "application/json", job->StatusJson());
  } else if (method == "GET" && path == "/ping") {
    Respond(fd, 200, "OK", "text/plain", "pong");
  } else {
    Respond(fd, 404, "Not Found", "text/plain", "not found\n");
  }
  Line(stdout, "%s %s", method.c_str(), target.c_str());
}

int RunServe(int argc, char** argv) {
  int64_t port = 0;
  if (argc < 3 || argc > 4 || !ParseInt(argv[2], 1, 65535, &port)) return Usage();
  sockaddr_in addr;
  if (!ParseIpv4(argc == 4 ? argv[3] : "0.0.0.0", port, &addr)) return Usage();
  InstallTermHandler(0);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 64) != 0) {
    Line(stderr, "serve: cannot listen on port %lld: %s", static_cast<long long>(port),
         std::strerror(errno));
    return 1;
  }
  Line(stdout, "listening on %s:%lld", argc == 4 ? argv[3] : "0.0.0.0",
       static_cast<long long>(port));
  FakeJob job;
  // One connection at a time is plenty for a test peer, and keeps the process
  // single-threaded, so the signal handler's _exit is always safe.
  for (;;) {
    int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      Line(stderr, "serve: accept: %s", std::strerror(errno));
      return 1;
    }
    HandleConnection(fd, &job);
    close(fd);
  }
}

// ---- HTTP client: fetch, callback, callback-raw ----

// Where to connect: an IPv4 address and port, or a unix socket.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t size = 0;
};

Endpoint FromIpv4(const sockaddr_in& in) {
  Endpoint e;
  std::memcpy(&e.addr, &in, sizeof in);
  e.size = sizeof in;
  return e;
}

bool FromUnixPath(const char* path, Endpoint* e) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof un.sun_path) return false;
  std::strcpy(un.sun_path, path);
  *e = Endpoint{};
  std::memcpy(&e->addr, &un, sizeof un);
  e->size = sizeof un;
  return true;
}

std::string AddrText(const Endpoint& e) {
  if (e.addr.ss_family == AF_UNIX) return reinterpret_cast<const sockaddr_un*>(&e.addr)->sun_path;
  const auto& addr = *reinterpret_cast<const sockaddr_in*>(&e.addr);
  char host[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(addr.sin_port));
}

// Connects to `addr`, retrying every 200 ms until `deadline_millis`: a peer container's
// server may not listen yet. Each attempt is bounded by the time left, so an address that
// drops SYNs cannot hold it for the kernel's two-minute connect timeout. Returns a
// blocking socket, or -1 with errno set.
int ConnectWithRetry(const Endpoint& addr, int64_t deadline_millis) {
  for (;;) {
    int fd = socket(addr.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int error = 0;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr.addr), addr.size) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd pending{fd, POLLOUT, 0};
        int64_t wait = std::max(deadline_millis - NowMillis(), kMinConnectAttemptMillis);
        int ready = poll(&pending, 1, static_cast<int>(wait));
        socklen_t size = sizeof error;
        if (ready < 0) {
          error = errno;
        } else if (ready == 0) {
          error = ETIMEDOUT;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) {
          error = errno;
        }
      }
    }
    if (error == 0) {
      if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0) return fd;
      error = errno;
    }
    close(fd);
    int64_t left = deadline_millis - NowMillis();
    if (left <= 0) {
      errno = error;
      return -1;
    }
    SleepMillis(std::min(left, kConnectRetryMillis));
  }
}

// The outcome of one HTTP exchange: `status` is 0 when no well-formed response came back,
// and then `error` says why.
struct HttpResult {
  int status = 0;
  std::string body;
  std::string error;
};

// Sends `request`, which must ask for "Connection: close" (or be HTTP/1.0), to `addr`,
// retrying the connect for up to 10 s, and reads the response to EOF. The body is
// returned as sent: chunked transfer coding is not decoded (neither `serve` nor Baton
// uses it for a response with a known length).
HttpResult HttpExchange(const Endpoint& addr, std::string_view request) {
  HttpResult result;
  int fd = ConnectWithRetry(addr, NowMillis() + kConnectDeadlineMillis);
  if (fd < 0) {
    result.error = "cannot connect to " + AddrText(addr) + ": " + std::strerror(errno);
    return result;
  }
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (!SendAll(fd, request)) {
    result.error = std::string("send: ") + std::strerror(errno);
    close(fd);
    return result;
  }
  std::string response;
  char chunk[4096];
  for (;;) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result.error = std::string("recv: ") + std::strerror(errno);
      close(fd);
      return result;
    }
    if (n == 0) break;
    response.append(chunk, static_cast<size_t>(n));
  }
  close(fd);

  size_t header_end = response.find("\r\n\r\n");
  size_t sp = response.find(' ');
  int64_t status = 0;
  if (header_end == std::string::npos || response.compare(0, 5, "HTTP/") != 0 ||
      sp == std::string::npos || sp + 4 > response.size() ||
      !ParseInt(std::string_view(response).substr(sp + 1, 3), 100, 599, &status)) {
    result.error = "malformed HTTP response (" + std::to_string(response.size()) + " bytes)";
    return result;
  }
  result.status = static_cast<int>(status);
  result.body = response.substr(header_end + 4);
  return result;
}

bool IsSuccess(int status) { return status >= 200 && status <= 299; }

// Writes a response body as lines: nothing when empty, a newline added when missing.
void PrintBody(std::FILE* out, const std::string& body) {
  if (body.empty()) return;
  std::fwrite(body.data(), 1, body.size(), out);
  if (body.back() != '\n') std::fputc('\n', out);
  std::fflush(out);
}

int RunFetch(int argc, char** argv) {
  int64_t port = 0;
  sockaddr_in addr;
  if (argc != 5 || !ParseInt(argv[3], 1, 65535, &port) || !ParseIpv4(argv[2], port, &addr) ||
      argv[4][0] != '/') {
    return Usage();
  }
  std::string request = std::string("GET ") + argv[4] + " HTTP/1.0\r\nHost: " + argv[2] + ":" +
                        argv[3] + "\r\nConnection: close\r\n\r\n";
  HttpResult result = HttpExchange(FromIpv4(addr), request);
  if (result.status == 0) {
    Line(stderr, "fetch: %s", result.error.c_str());
    return 1;
  }
  std::fwrite(result.body.data(), 1, result.body.size(), stdout);
  if (result.body.empty() || result.body.back() != '\n') std::fputc('\n', stdout);
  std::fflush(stdout);
  if (result.status != 200) {
    Line(stderr, "fetch: HTTP %d", result.status);
    return 1;
  }
  return 0;
}

// Where a job reports, from $BATON_CALLBACK_URL.
struct CallbackUrl {
  Endpoint addr;
  std::string authority;  // "A.B.C.D:PORT" as written in the URL, for the Host header
  std::string path;
};

// Parses http://A.B.C.D[:PORT][/PATH] (port 80 and path "/" when left out). Returns false
// for anything else: another scheme, a host name, a bad port, or a path holding spaces or
// control characters, which would break the request line. With `socket` (the
// $BATON_CALLBACK_SOCKET Baton mounts), the host is only the Host header and any name is
// fine: the request goes to the unix socket.
bool ParseCallbackUrl(std::string_view url, const char* socket, CallbackUrl* out) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  url.remove_prefix(kScheme.size());
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "/" : url.substr(slash);
  size_t colon = authority.find(':');
  std::string host(authority.substr(0, colon));
  int64_t port = 80;
  if (colon != std::string_view::npos && !ParseInt(authority.substr(colon + 1), 1, 65535, &port)) {
    return false;
  }
  if (socket != nullptr && socket[0] != '\0') {
    if (!FromUnixPath(socket, &out->addr)) return false;
  } else {
    sockaddr_in in;
    if (!ParseIpv4(host.c_str(), port, &in)) return false;
    out->addr = FromIpv4(in);
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  out->authority = std::string(authority);
  out->path = std::string(path);
  return true;
}

// Reads $BATON_CALLBACK_URL into *url; when it is missing or malformed, says so on stderr
// (prefixed with `mode`) and returns false.
bool CallbackUrlFromEnv(const char* mode, CallbackUrl* url) {
  const char* value = std::getenv("BATON_CALLBACK_URL");
  if (value == nullptr || value[0] == '\0') {
    Line(stderr, "%s: BATON_CALLBACK_URL is not set", mode);
    return false;
  }
  if (!ParseCallbackUrl(value, std::getenv("BATON_CALLBACK_SOCKET"), url)) {
    Line(stderr, "%s: BATON_CALLBACK_URL \"%s\" is not http://A.B.C.D[:PORT][/PATH]", mode, value);
    return false;
  }
  return true;
}

HttpResult PostCallback(const CallbackUrl& url, std::string_view token, std::string_view body) {
  std::string request = "POST " + url.path + " HTTP/1.1\r\n";
  request += "Host: " + url.authority + "\r\n";
  request += "Authorization: Bearer " + std::string(token) + "\r\n";
  request += "Content-Type: application/json\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "Connection: close\r\n\r\n";
  request += body;
  return HttpExchange(url.addr, request);
}

// `text` as a JSON string literal, quotes included.
std::string JsonString(std::string_view text) {
  std::string json = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      json += '\\';
      json += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      json += escaped;
    } else {
      json += c;
    }
  }
  return json + "\"";
}

int RunCallback(int argc, char** argv) {
  int64_t steps = 0;
  int64_t exit_code = 0;
  if (argc < 3 || argc > 5 || !ParseInt(argv[2], 0, 100000, &steps) ||
      (argc == 5 && !ParseInt(argv[4], 0, 255, &exit_code))) {
    return Usage();
  }
  std::string status = argc >= 4 ? argv[3] : "Completed";
  CallbackUrl url;
  if (!CallbackUrlFromEnv("callback", &url)) return kUsageExitCode;
  const char* token = std::getenv("BATON_JOB_TOKEN");
  if (token == nullptr || token[0] == '\0') {
    Line(stderr, "callback: BATON_JOB_TOKEN is not set");
    return kUsageExitCode;
  }

  // Sends one report; false when no answer came back at all. A non-2xx answer is printed
  // and the job goes on, so a test can see every answer of a rejected job.
  // A report that got no answer (the server restarting, say) is sent again for up to
  // 30 s: reports are idempotent for Baton, so a duplicate does no harm.
  auto report = [&](const std::string& what, const std::string& body) {
    HttpResult result = PostCallback(url, token, body);
    const int64_t give_up = NowMillis() + kCallbackResendMillis;
    while (result.status == 0 && NowMillis() < give_up) {
      Line(stderr, "callback %s: %s (sending again)", what.c_str(), result.error.c_str());
      SleepMillis(500);
      result = PostCallback(url, token, body);
    }
    if (result.status == 0) {
      Line(stderr, "callback %s: %s", what.c_str(), result.error.c_str());
      return false;
    }
    Line(stdout, "callback %s: HTTP %d", what.c_str(), result.status);
    if (!IsSuccess(result.status)) PrintBody(stdout, result.body);
    return true;
  };
  for (int64_t i = 1; i <= steps; ++i) {
    if (i > 1) SleepMillis(kCallbackIntervalMillis);
    std::string of = std::to_string(steps);
    std::string step = std::to_string(i);
    if (!report("progress " + step + "/" + of,
                "{\"progress\":{\"step\":" + step + ",\"of\":" + of + "}}")) {
      return 1;
    }
  }
  if (status != "none") {
    if (steps > 0) SleepMillis(kCallbackIntervalMillis);
    if (!report("status " + status, "{\"status\":" + JsonString(status) +
                                        ",\"exitCode\":" + std::to_string(exit_code) + "}")) {
      return 1;
    }
  }
  // The container's exit code agrees with the reported status.
  return static_cast<int>(exit_code);
}

int RunCallbackRaw(int argc, char** argv) {
  if (argc != 4) return Usage();
  CallbackUrl url;
  if (!CallbackUrlFromEnv("callback-raw", &url)) return kUsageExitCode;
  HttpResult result = PostCallback(url, argv[2], argv[3]);
  if (result.status == 0) {
    Line(stderr, "callback-raw: %s", result.error.c_str());
    return 1;
  }
  Line(stdout, "HTTP %d", result.status);
  PrintBody(stdout, result.body);
  return IsSuccess(result.status) ? 0 : 1;
}

int RunCallbackHold(int argc, char** argv) {
  int64_t n = 0, seconds = 0;
  if (argc != 4 || !ParseInt(argv[2], 1, 1000000, &n) || !ParseInt(argv[3], 1, 3600, &seconds)) return Usage();
  const char* socket_path = std::getenv("BATON_CALLBACK_SOCKET");
  Endpoint addr;
  if (socket_path == nullptr || !FromUnixPath(socket_path, &addr)) {
    Line(stderr, "callback-hold: BATON_CALLBACK_SOCKET is not set");
    return kUsageExitCode;
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  std::vector<int> fds;
  for (int64_t i = 0; i < n; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr.addr), addr.size) != 0) {
      close(fd);
      break;
    }
    fds.push_back(fd);
  }
  Line(stdout, "held %zu of %lld", fds.size(), static_cast<long long>(n));
  const int64_t end = NowMillis() + seconds * 1000;
  while (NowMillis() < end) {
    SleepMillis(std::min<int64_t>(5000, std::max<int64_t>(0, end - NowMillis())));
    size_t alive = 0;
    for (int fd : fds) alive += send(fd, "P", 1, MSG_NOSIGNAL) == 1;
    Line(stdout, "alive %zu", alive);
  }
  for (int fd : fds) close(fd);
  return 0;
}

// ---- sandbox, sniff, cat, fork, connect ----

std::string StatusField(const char* name) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return "?";
  char line[512];
  std::string value = "?";
  const size_t n = std::strlen(name);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, name, n) == 0 && line[n] == ':') {
      const char* v = line + n + 1;
      while (*v == ' ' || *v == '\t') ++v;
      value = v;
      while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
    }
  }
  std::fclose(f);
  return value;
}

std::string ReadSmallFile(const char* path, std::string* error) {
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) {
    *error = std::strerror(errno);
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

const char* Opens(int domain, int type, int protocol) {
  int fd = socket(domain, type, protocol);
  if (fd < 0) return "denied";
  close(fd);
  return "opened";
}

int RunSandbox(int argc, char** argv) {
  if (argc != 2) return Usage();
  Line(stdout, "uid=%d gid=%d", static_cast<int>(getuid()), static_cast<int>(getgid()));
  Line(stdout, "capeff=%s", StatusField("CapEff").c_str());
  Line(stdout, "nonewprivs=%s", StatusField("NoNewPrivs").c_str());
  Line(stdout, "raw=%s", Opens(AF_INET, SOCK_RAW, IPPROTO_ICMP));
  Line(stdout, "packet=%s", Opens(AF_PACKET, SOCK_RAW, htons(0x0003)));
  int fd = open("/.baton-probe", O_WRONLY | O_CREAT | O_TRUNC, 0600);
  Line(stdout, "rootfs=%s", fd >= 0 ? "writable" : "readonly");
  if (fd >= 0) {
    close(fd);
    unlink("/.baton-probe");
  }
  std::string error;
  std::string pids = ReadSmallFile("/sys/fs/cgroup/pids/pids.max", &error);
  if (pids.empty()) pids = ReadSmallFile("/sys/fs/cgroup/pids.max", &error);
  if (!pids.empty()) Line(stdout, "pids.max=%s", pids.c_str());
  return 0;
}

int RunSniff(int argc, char** argv) {
  int64_t seconds = 0;
  if (argc != 4 || !ParseInt(argv[2], 1, 600, &seconds)) return Usage();
  int fd = socket(AF_PACKET, SOCK_RAW, htons(0x0003));
  if (fd < 0) {
    Line(stdout, "sniff: denied: %s", std::strerror(errno));
    return 0;
  }
  Line(stdout, "sniff: opened a packet socket");
  const std::string_view needle = argv[3];
  const int64_t until = NowMillis() + seconds * 1000;
  char frame[65536];
  while (NowMillis() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ssize_t n = recv(fd, frame, sizeof frame, 0);
    if (n > 0 && std::string_view(frame, static_cast<size_t>(n)).find(needle) != std::string_view::npos) {
      Line(stdout, "captured %s", argv[3]);
    }
  }
  close(fd);
  return 3;
}

int RunCat(int argc, char** argv) {
  if (argc < 3) return Usage();
  for (int i = 2; i < argc; ++i) {
    std::string error;
    std::string content = ReadSmallFile(argv[i], &error);
    Line(stdout, "%s: %s", argv[i], error.empty() ? content.c_str() : error.c_str());
  }
  return 0;
}

int RunFork(int argc, char** argv) {
  int64_t n = 0;
  if (argc != 3 || !ParseInt(argv[2], 1, 100000, &n)) return Usage();
  int64_t started = 0;
  for (int64_t i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      SleepMillis(2000);
      _exit(0);
    }
    if (pid < 0) break;
    ++started;
  }
  Line(stdout, "forked %lld of %lld", static_cast<long long>(started), static_cast<long long>(n));
  while (wait(nullptr) > 0) {
  }
  return 0;
}

int RunConnect(int argc, char** argv) {
  int64_t port = 0;
  sockaddr_in addr;
  if (argc != 4 || !ParseInt(argv[3], 1, 65535, &port) || !ParseIpv4(argv[2], port, &addr)) return Usage();
  int fd = ConnectWithRetry(FromIpv4(addr), NowMillis() + 3000);
  if (fd < 0) {
    Line(stdout, "connect: %s", std::strerror(errno));
    return 1;
  }
  close(fd);
  Line(stdout, "connected");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::string_view mode = argv[1];
  if (mode == "serve") return RunServe(argc, argv);
  InstallTermHandler(kTermExitCode);
  if (mode == "sleep") return RunSleep(argc, argv);
  if (mode == "exit") return RunExit(argc, argv);
  if (mode == "fail-first-attempt") return RunFailFirstAttempt(argc, argv);
  if (mode == "print") return RunPrint(argc, argv);
  if (mode == "env") return RunEnv(argc, argv);
  if (mode == "alloc") return RunAlloc(argc, argv);
  if (mode == "fetch") return RunFetch(argc, argv);
  if (mode == "callback") return RunCallback(argc, argv);
  if (mode == "callback-raw") return RunCallbackRaw(argc, argv);
  if (mode == "callback-hold") return RunCallbackHold(argc, argv);
  if (mode == "sandbox") return RunSandbox(argc, argv);
  if (mode == "sniff") return RunSniff(argc, argv);
  if (mode == "cat") return RunCat(argc, argv);
  if (mode == "fork") return RunFork(argc, argv);
  if (mode == "connect") return RunConnect(argc, argv);
  return Usage();
}
