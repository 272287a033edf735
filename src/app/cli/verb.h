// What every `baton` client verb is built from (internal to src/app/cli/; the
// verbs themselves are registered through commands.h):
//
//  - GlobalOptions / AddGlobalOptions: --server, --key, --output (and
//    --task-hub for the durable verbs);
//  - Session: one invocation of a verb: the HTTP client, the output streams
//    and the exit code;
//  - AddGroup / AddVerb: registration of a verb group and of a verb whose
//    options live in a struct owned by its callback;
//  - FetchPages: the paging of list endpoints;
//  - small JSON display helpers that never throw on unexpected shapes.
//
// Thread-safety: a Session belongs to the one thread that runs its verb.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <exception>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "app/cli/commands.h"
#include "app/cli/http_client.h"

namespace baton::cli {

// Keeps the server's member order, so --output json shows what it sent.
using OJson = nlohmann::ordered_json;

inline constexpr std::string_view kDefaultServer = "http://127.0.0.1:8080";
// `list --all` follows continuation tokens at most this many times, so a
// server that keeps answering with a token cannot keep the CLI forever.
inline constexpr int kMaxListPages = 10000;
// When the server holds a request for up to a wait, allow for the rest of
// the exchange on top.
inline constexpr std::chrono::seconds kWaitMargin{30};

// ---- JSON display helpers ----

// A member as display text: strings as they are, other values as JSON, ""
// when missing or null, or when `object` is not an object.
std::string Text(const OJson& object, std::string_view key);

// A member as JSON text (strings keep their quotes, so a string output "42"
// is told apart from the number 42); "" when missing or null.
std::string JsonText(const OJson& object, std::string_view key);

// A boolean member as "yes" / "no"; other values as Text().
std::string YesNo(const OJson& object, std::string_view key);

// `value` as compact JSON (invalid UTF-8 replaced, never throws).
std::string CompactJson(const OJson& value);

// `text` as JSON through baton::ParseJson (so with its depth limit), or
// nullopt when it is not such JSON.
std::optional<OJson> ParseJson(std::string_view text);

// Why `text` is not JSON (ParseJson's reason: a syntax error, bytes that
// are not UTF-8, nesting deeper than kMaxJsonDepth); "" when it is JSON.
std::string JsonError(std::string_view text);

// Newlines, carriage returns and tabs replaced by spaces.
std::string OneLine(std::string_view s);

std::string Lowercase(std::string_view s);

// Validates a comma-separated list of names against `known_names`
// (case-insensitive; blanks around names ignored) and returns it in the
// canonical spelling. Returns false and sets `*error` ("unknown <what> 'x'
// (known: ...)" or "no <what> given") otherwise.
bool NormalizeNameList(std::string_view list, std::span<const std::string_view> known_names,
                       std::string_view what, std::string* out, std::string* error);

// Reads the whole of file `path`, or stdin when `path` is "-". False when the
// file cannot be opened.
bool ReadFileOrStdin(const std::string& path, std::string* text);

// ---- Options shared by every verb ----

struct GlobalOptions {
  std::string server = std::string(kDefaultServer);
  std::string key;
  std::string output = "table";
  std::string task_hub;  // instance and entity verbs only
};

// Adds --server, --key, --output and, when `task_hub`, --task-hub to `verb`.
void AddGlobalOptions(CLI::App* verb, GlobalOptions* g, bool task_hub);

// ---- One invocation of a verb ----

// Where a verb writes its results, its errors, and its exit code.
struct Io {
  std::ostream* out;
  std::ostream* err;
  int* exit_code;
};

class Session {
 public:
  // Sets the exit code to kExitOk. REQUIRES: `g` outlives the session.
  Session(const GlobalOptions& g, const Io& io);

  // Parses --server; false (exit code set) when it is not a usable URL.
  bool Init();

  bool json() const { return g_.output == "json"; }
  std::ostream& out() { return *io_.out; }
  std::ostream& err() { return *io_.err; }
  const GlobalOptions& global() const { return g_; }

  // Prints "baton: <message>" on stderr and sets the exit code.
  void Fail(int exit_code, const std::string& message);
  // Prints "baton: <message>" on stderr.
  void Warn(const std::string& message);
  void SetExitCode(int code) { *io_.exit_code = code; }

  // Sends `spec`. Returns the response when the server answered 2xx;
  // otherwise prints why and sets the exit code.
  std::optional<HttpResponse> Call(const HttpRequestSpec& spec);

  // Call(), then the body as JSON of the expected kind (`array` or object).
  std::optional<OJson> CallForJson(const HttpRequestSpec& spec, bool array);

  // The body as JSON of the expected kind; otherwise reports an unexpected
  // answer (exit code 1).
  std::optional<OJson> ExpectJson(const HttpResponse& res, bool array);

  // `value` pretty-printed on stdout.
  void PrintJson(const OJson& value);

  // Query parameters of an instance or entity verb, starting with taskHub
  // when given.
  std::vector<std::pair<std::string, std::string>> HubQuery() const;

 private:
  const GlobalOptions& g_;
  Io io_;
  std::optional<HttpClient> client_;
};

// ---- Paging ----

// How a list endpoint pages.
struct PageStyle {
  // "": the answer is a JSON array, and the next page's token comes in the
  // x-ms-continuation-token header and goes back in it (the Durable Functions
  // API). Otherwise the answer is an object whose member `items_member` holds
  // the array and whose member "continuationToken" (absent on the last page)
  // goes back as the query parameter continuationToken (the /api/v1 API).
  std::string items_member;
};

// One page of a list endpoint, or with `all` every page (at most
// kMaxListPages), as one array. Empty when a request failed (already
// reported). `*more`: pages were left unread; `*next_token` (may be null):
// the token of the first unread page; `*first` (may be null): the first
// page's whole answer (its headers and body).
std::optional<OJson> FetchPages(Session& s, HttpRequestSpec spec, bool all, bool* more,
                                const PageStyle& style = {}, std::string* next_token = nullptr,
                                HttpResponse* first = nullptr);

// Warns on stderr that more `what` match than were printed. `remaining`
// (when known, >= 0) is how many, and `page_size` turns it into pages.
void WarnIfMore(Session& s, bool more, bool all, const std::string& what, int64_t remaining = -1,
                int64_t page_size = 0);

// ---- Registration ----

// Adds a verb group (`baton NAME VERB ...`) that needs exactly one verb.
CLI::App* AddGroup(CLI::App& app, const char* name, const char* help);

// Adds a verb whose options live in a shared `Opts` (owned by the callback,
// hence by the app; `Opts` has a GlobalOptions member `g`) and runs
// `run(Session&, const Opts&)` when it is parsed.
template <typename Opts, typename Run>
std::pair<CLI::App*, std::shared_ptr<Opts>> AddVerb(CLI::App* group, const char* name,
                                                    const char* help, bool task_hub, const Io& io,
                                                    Run run) {
  auto opts = std::make_shared<Opts>();
  CLI::App* verb = group->add_subcommand(name, help);
  verb->footer(ExitCodesHelp());
  AddGlobalOptions(verb, &opts->g, task_hub);
  verb->callback([opts, io, run] {
    Session session(opts->g, io);
    // Nothing below is expected to throw; this keeps a surprise (bad_alloc,
    // a JSON library type error) from escaping through CLI11's parse().
    try {
      if (session.Init()) run(session, *opts);
    } catch (const std::exception& e) {
      session.Fail(kExitError, std::string("internal error: ") + e.what());
    }
  });
  return {verb, opts};
}

}  // namespace baton::cli
