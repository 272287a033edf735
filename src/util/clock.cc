#include "baton/clock.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <ctime>

namespace baton {

int64_t ToUnixMicros(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

TimePoint FromUnixMicros(int64_t micros) {
  // A TimePoint counts nanoseconds in 64 bits: saturate rather than overflow.
  constexpr int64_t kLimit = std::numeric_limits<int64_t>::max() / 1000;
  micros = std::clamp<int64_t>(micros, -kLimit, kLimit);
  return TimePoint(std::chrono::duration_cast<Duration>(std::chrono::microseconds(micros)));
}

std::string FormatIso8601(TimePoint t) {
  int64_t us = ToUnixMicros(t);
  int64_t secs = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
  int64_t frac = us - secs * 1000000;
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

bool ParseIso8601(std::string_view text, TimePoint* out) {
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+00:00)
  auto digits = [&](size_t pos, size_t n, int* v) {
    if (pos + n > text.size()) return false;
    int x = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      x = x * 10 + (text[i] - '0');
    }
    *v = x;
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!digits(0, 4, &y) || text.size() < 19 || text[4] != '-' || !digits(5, 2, &mo) ||
      text[7] != '-' || !digits(8, 2, &d) || (text[10] != 'T' && text[10] != ' ') ||
      !digits(11, 2, &h) || text[13] != ':' || !digits(14, 2, &mi) || text[16] != ':' ||
      !digits(17, 2, &s))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  if (y < kMinIso8601Year || y > kMaxIso8601Year) return false;  // beyond what a TimePoint holds
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int n = 0;
    int64_t scale = 100000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (n < 6) {
        micros += (text[pos] - '0') * scale;
        scale /= 10;
      }
      ++n;
      ++pos;
    }
    if (n == 0) return false;
  }
  std::string_view rest = text.substr(pos);
  if (!(rest.empty() || rest == "Z" || rest == "+00:00" || rest == "z")) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t secs = timegm(&tm);
  *out = FromUnixMicros(static_cast<int64_t>(secs) * 1000000 + micros);
  return true;
}

namespace {
class SystemClockImpl final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};
}  // namespace

std::shared_ptr<Clock> SystemClock() {
  static std::shared_ptr<Clock> clock = std::make_shared<SystemClockImpl>();
  return clock;
}

ManualClock::ManualClock(TimePoint start) : now_(start) {}

TimePoint ManualClock::Now() const {
  std::lock_guard lock(mu_);
  return now_;
}

void ManualClock::Advance(Duration d) {
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lock(mu_);
    now_ += d;
    for (auto& [id, fn] : subscribers_) fns.push_back(fn);
  }
  for (auto& fn : fns) fn();
}

int ManualClock::Subscribe(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  int id = next_id_++;
  subscribers_.emplace_back(id, std::move(fn));
  return id;
}

void ManualClock::Unsubscribe(int id) {
  std::lock_guard lock(mu_);
  std::erase_if(subscribers_, [id](const auto& p) { return p.first == id; });
}

}  // namespace baton
