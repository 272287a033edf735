#include "app/cli/verb.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <iterator>

#include "baton/json.h"

namespace baton::cli {

std::string Text(const OJson& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return CompactJson(*it);
}

std::string JsonText(const OJson& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  return CompactJson(*it);
}

std::string YesNo(const OJson& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || !it->is_boolean()) return Text(object, key);
  return it->get<bool>() ? "yes" : "no";
}

std::string CompactJson(const OJson& value) {
  return value.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

std::optional<OJson> ParseJson(std::string_view text) {
  OJson value;
  if (!baton::ParseJson(text, &value).ok()) return std::nullopt;
  return value;
}

std::string JsonError(std::string_view text) {
  OJson value;
  Status s = baton::ParseJson(text, &value);
  if (s.ok()) return "";
  constexpr std::string_view kSyntax = "is not valid JSON: ";
  std::string why = s.message();
  if (why.rfind(kSyntax, 0) == 0) why.erase(0, kSyntax.size());
  return why;
}

std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

std::string Lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool NormalizeNameList(std::string_view list, std::span<const std::string_view> known_names,
                       std::string_view what, std::string* out, std::string* error) {
  std::string result;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view name = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front())))
      name.remove_prefix(1);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back())))
      name.remove_suffix(1);
    if (!name.empty()) {
      auto it = std::find_if(known_names.begin(), known_names.end(), [&](std::string_view known) {
        return Lowercase(known) == Lowercase(name);
      });
      if (it == known_names.end()) {
        std::string names;
        for (std::string_view known : known_names)
          names += (names.empty() ? "" : ", ") + std::string(known);
        *error =
            "unknown " + std::string(what) + " '" + std::string(name) + "' (known: " + names + ")";
        return false;
      }
      if (!result.empty()) result += ',';
      result += *it;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (result.empty()) {
    *error = "no " + std::string(what) + " given";
    return false;
  }
  *out = std::move(result);
  return true;
}

bool ReadFileOrStdin(const std::string& path, std::string* text) {
  if (path == "-") {
    text->assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return true;
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  text->assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return true;
}

void AddGlobalOptions(CLI::App* verb, GlobalOptions* g, bool task_hub) {
  verb->add_option("--server", g->server, "URL of the Baton server (http:// only)")
      ->envname("BATON_SERVER")
      ->type_name("URL")
      ->capture_default_str();
  verb->add_option("--key", g->key, "API key (admin or tenant)")
      ->envname("BATON_KEY")
      ->type_name("KEY");
  verb->add_option("--output,-o", g->output, "Output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->type_name("FORMAT")
      ->capture_default_str();
  if (task_hub) {
    verb->add_option("--task-hub", g->task_hub,
                     "Act on tenant T's task hub (admin keys; sends taskHub=T)")
        ->type_name("T");
  }
}

Session::Session(const GlobalOptions& g, const Io& io) : g_(g), io_(io) {
  *io_.exit_code = kExitOk;
}

bool Session::Init() {
  auto url = ParseServerUrl(g_.server);
  if (!url.ok()) {
    Fail(kExitUsage, "--server: " + url.status().message());
    return false;
  }
  HttpClientOptions options;
  options.api_key = g_.key;
  client_.emplace(*std::move(url), std::move(options));
  return true;
}

void Session::Fail(int exit_code, const std::string& message) {
  *io_.err << "baton: " << message << '\n';
  *io_.exit_code = exit_code;
}

void Session::Warn(const std::string& message) { *io_.err << "baton: " << message << '\n'; }

std::optional<HttpResponse> Session::Call(const HttpRequestSpec& spec) {
  auto res = client_->Send(spec);
  if (!res.ok()) {
    Fail(kExitError, res.status().message());
    return std::nullopt;
  }
  if (res->status < 200 || res->status > 299) {
    std::string message = DescribeErrorResponse(res->status, res->body);
    if ((res->status == 401) && g_.key.empty()) {
      message += "; no API key was given: pass --key or set BATON_KEY";
    }
    Fail(ExitCodeForHttpStatus(res->status), message);
    return std::nullopt;
  }
  return std::move(*res);
}

std::optional<OJson> Session::CallForJson(const HttpRequestSpec& spec, bool array) {
  auto res = Call(spec);
  if (!res) return std::nullopt;
  return ExpectJson(*res, array);
}

std::optional<OJson> Session::ExpectJson(const HttpResponse& res, bool array) {
  auto body = ParseJson(res.body);
  if (!body || (array ? !body->is_array() : !body->is_object())) {
    Fail(kExitError, "unexpected answer from the server (HTTP " + std::to_string(res.status) +
                         "): expected a JSON " + (array ? "array" : "object") +
                         ", got: " + OneLine(res.body.substr(0, 200)));
    return std::nullopt;
  }
  return body;
}

void Session::PrintJson(const OJson& value) {
  out() << value.dump(2, ' ', false, OJson::error_handler_t::replace) << '\n';
}

std::vector<std::pair<std::string, std::string>> Session::HubQuery() const {
  std::vector<std::pair<std::string, std::string>> q;
  if (!g_.task_hub.empty()) q.emplace_back("taskHub", g_.task_hub);
  return q;
}

std::optional<OJson> FetchPages(Session& s, HttpRequestSpec spec, bool all, bool* more,
                                const PageStyle& style, std::string* next_token, HttpResponse* first) {
  const bool in_body = !style.items_member.empty();
  const std::string target = spec.target;
  OJson items = OJson::array();
  std::string token;
  int pages = 0;
  do {
    if (in_body) {
      spec.target = target;
      if (!token.empty()) {
        spec.target += (target.find('?') == std::string::npos ? "?" : "&");
        spec.target += "continuationToken=" + PercentEncode(token);
      }
    } else {
      spec.continuation_token = token;
    }
    auto res = s.Call(spec);
    if (!res) return std::nullopt;
    if (pages == 0 && first != nullptr) *first = *res;
    auto page = s.ExpectJson(*res, /*array=*/!in_body);
    if (!page) return std::nullopt;
    OJson* list = &*page;
    if (in_body) {
      auto it = page->find(style.items_member);
      if (it == page->end() || !it->is_array()) {
        s.Fail(kExitError, "unexpected answer from the server (HTTP " +
                               std::to_string(res->status) + "): no array \"" + style.items_member +
                               "\" in: " + OneLine(res->body.substr(0, 200)));
        return std::nullopt;
      }
      list = &*it;
      token = Text(*page, "continuationToken");
    } else {
      token = res->continuation_token;
    }
    for (auto& item : *list) items.push_back(std::move(item));
    ++pages;
  } while (all && !token.empty() && pages < kMaxListPages);
  *more = !token.empty();
  if (next_token != nullptr) *next_token = token;
  return items;
}

void WarnIfMore(Session& s, bool more, bool all, const std::string& what, int64_t remaining,
                int64_t page_size) {
  if (!more) return;
  std::string how_many = "more " + what + " match";
  if (remaining > 0) {
    how_many = std::to_string(remaining) + " more " + what + " match";
    if (page_size > 0) {
      const int64_t pages = (remaining + page_size - 1) / page_size;
      how_many += " (" + std::to_string(pages) + (pages == 1 ? " more page)" : " more pages)");
    }
  }
  s.Warn(all ? "stopped after " + std::to_string(kMaxListPages) + " pages; " + how_many
             : how_many + "; pass --all to fetch every page");
}

CLI::App* AddGroup(CLI::App& app, const char* name, const char* help) {
  CLI::App* group = app.add_subcommand(name, help);
  group->require_subcommand(1);
  group->footer(ExitCodesHelp());
  return group;
}

}  // namespace baton::cli
