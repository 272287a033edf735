// Time in Baton: one injectable source of "now".
//
// Everything that reads wall-clock time in the engine and the stores (timer
// due times, lease expiry, timestamps of history events) asks a `Clock`. The
// production clock is `SystemClock()`; tests use `ManualClock` so that a timer
// an hour away fires the moment the test advances the clock, without sleeping.
//
// Thread-safety: every Clock method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace baton {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::system_clock::duration;

// Microseconds since the Unix epoch: how Baton stores and transmits times.
int64_t ToUnixMicros(TimePoint t);
// Saturates at the range a TimePoint holds (years 1677 to 2262).
TimePoint FromUnixMicros(int64_t micros);
// "2026-11-23T22:05:00.123456Z" (UTC, microseconds), and back. Parsing also
// accepts no fraction and fewer digits; returns false on anything else, and
// on a year a TimePoint (64-bit nanoseconds) cannot hold.
inline constexpr int kMinIso8601Year = 1678;
inline constexpr int kMaxIso8601Year = 2261;
std::string FormatIso8601(TimePoint t);
bool ParseIso8601(std::string_view text, TimePoint* out);

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;

  // Registers `fn` to be called after the clock jumps forward (ManualClock
  // only; the system clock never calls it). Waiters that sleep until a due
  // time use this to re-check. `fn` must be cheap and must not call back into
  // the clock. Returns an id for Unsubscribe.
  virtual int Subscribe(std::function<void()> fn) { (void)fn; return 0; }
  virtual void Unsubscribe(int id) { (void)id; }

  // The longest a waiter should sleep before re-reading Now(): unbounded for
  // the system clock, short for a manual one (its jumps also notify).
  virtual Duration MaxSleep() const { return std::chrono::hours(24); }
};

// The process-wide system clock. Never null; lives for the whole program.
std::shared_ptr<Clock> SystemClock();

// A clock that moves only when told to. Starts at `start`.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start);
  TimePoint Now() const override;
  // Moves time forward by `d` and notifies subscribers.
  void Advance(Duration d);
  int Subscribe(std::function<void()> fn) override;
  void Unsubscribe(int id) override;
  Duration MaxSleep() const override { return std::chrono::milliseconds(20); }

 private:
  mutable std::mutex mu_;
  TimePoint now_;
  int next_id_ = 1;
  std::vector<std::pair<int, std::function<void()>>> subscribers_;
};

}  // namespace baton
