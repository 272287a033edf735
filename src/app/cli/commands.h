// The `baton` CLI verbs that drive a running `baton serve` over its HTTP API
// (docs/http-api.md; user guide in docs/cli.md):
//
//   baton instance start|status|list|raise|terminate|suspend|resume|restart|purge|history
//   baton tenant   create|list|disable|quota
//   baton key      create|list|revoke
//   baton entity   get|signal|list|clean
//   baton job      submit|list|get|logs|cancel|wait|events   (job_commands.h)
//
// Every verb takes --server URL (env BATON_SERVER), --key KEY (env BATON_KEY)
// and --output table|json. Results go to stdout (aligned tables or
// "key: value" lines, or the server's JSON pretty-printed); errors and
// warnings go to stderr, prefixed "baton: ".
//
// Wiring, in main():
//
//   CLI::App app{...};
//   int exit_code = 0;
//   baton::cli::ClientCommands client = baton::cli::AddClientCommands(app, &exit_code);
//   try {
//     app.parse(argc, argv);
//   } catch (const CLI::ParseError& e) {
//     return baton::cli::ExitForParseError(app, e);
//   }
//   if (client.parsed()) return exit_code;
//
// The verbs run as CLI11 callbacks during app.parse() and report through
// `*exit_code` only; they never throw and never call exit().
#pragma once

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace baton::cli {

// Exit codes of the client verbs (also in every verb's --help footer and in
// docs/cli.md). Scripts may rely on them.
inline constexpr int kExitOk = 0;
// A 5xx answer, an unexpected answer, or no answer at all (connection refused,
// timeout).
inline constexpr int kExitError = 1;
// The command line is wrong: CLI11 parse errors, invalid JSON given to
// --input/--data, an unreadable --input-file, an invalid --server URL.
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotFound = 3;         // 404
inline constexpr int kExitConflict = 4;         // 409, 410, 412
inline constexpr int kExitUnauthenticated = 5;  // 401, 403
inline constexpr int kExitBadRequest = 6;       // any other 4xx (400, 405, 413, ...)
// `instance start --wait`, `job wait`, `job submit --wait`: the request
// succeeded but the instance or job did not end Completed (it ended Failed,
// Terminated or Canceled, or was still running when the wait ran out).
inline constexpr int kExitNotCompleted = 7;

// The exit code for an HTTP status: kExitOk for 2xx, then as above; 1xx, 3xx
// and 5xx give kExitError.
int ExitCodeForHttpStatus(int http_status);

// The exit-code table as shown in the --help footers.
std::string ExitCodesHelp();

// The verb groups that AddClientCommands registered.
struct ClientCommands {
  std::vector<CLI::App*> groups;  // instance, tenant, key, entity, job; owned by the app

  // Whether one of the verbs was on the command line (and so has run and set
  // the exit code). Meaningful after app.parse() returned.
  bool parsed() const;
};

// Registers the `instance`, `tenant`, `key`, `entity` and `job` subcommands on `app`. When a
// verb is parsed, it runs and stores its exit code in `*exit_code`. Results
// are written to `out`, errors to `err`.
// REQUIRES: `exit_code`, `out` and `err` outlive `app`; `app` has no
// subcommands of these names yet.
ClientCommands AddClientCommands(CLI::App& app, int* exit_code, std::ostream& out,
                                 std::ostream& err);
// As above, writing to std::cout and std::cerr.
ClientCommands AddClientCommands(CLI::App& app, int* exit_code);

// Prints a CLI11 parse error (or the help / version text it stands for) the
// way CLI11 does, and returns the process exit code: 0 for --help, otherwise
// kExitUsage.
int ExitForParseError(CLI::App& app, const CLI::ParseError& error);
int ExitForParseError(CLI::App& app, const CLI::ParseError& error, std::ostream& out,
                      std::ostream& err);

// ---- Formatting, exposed for tests ----

// An aligned table: a header row, then one line per row; columns separated
// by two spaces, padded to their widest cell (counted in UTF-8 code points);
// the last column is not padded; no trailing spaces. Newlines and tabs in
// cells become spaces so each row stays one line. Short rows are padded with
// empty cells.
std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// "Key:   value" lines with values aligned after the longest key. Continuation
// lines of a multi-line value are indented to the value column.
std::string FormatKeyValues(const std::vector<std::pair<std::string, std::string>>& fields);

// The message for a non-2xx answer, from the standard error body
// {"error":{"code","message","field"}}:
//   "instance 'x' was not found (HTTP 404 NotFound; field: instanceId)"
// or, when the body is not such JSON, "HTTP 502: <start of the body>".
std::string DescribeErrorResponse(int http_status, std::string_view body);

// Validates a comma-separated list of runtime statuses (case-insensitive) and
// returns it in the canonical spelling ("running,failed" -> "Running,Failed").
// Returns false and sets `*error` for an unknown name.
bool NormalizeRuntimeStatuses(std::string_view list, std::string* out, std::string* error);

// Validates an ISO 8601 UTC time as the server accepts it
// ("2026-01-31T12:00:00Z", fractions allowed) or a date ("2026-01-31", meaning
// its midnight UTC). Returns the text to send, or false and sets `*error`.
bool NormalizeTime(std::string_view text, std::string* out, std::string* error);

// The request path of entity NAME@KEY relative to the server's base path:
// "/runtime/webhooks/durabletask/entities/<name>/<key>", both percent-encoded,
// except that the empty key, given as "" or "$", is sent as a literal "$" (the
// API's spelling of it).
std::string EntityPath(std::string_view name, std::string_view key);

}  // namespace baton::cli
