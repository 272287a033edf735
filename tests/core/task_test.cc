// Task<T>, WhenAll and WhenAny, driven by hand-opened gates (no engine).
#include "baton/task.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace baton {
namespace {

// An awaitable the test opens by hand, standing in for a durable operation.
struct Gate : detail::DurableAwaitable {
  bool open = false;
  int value = 0;
  std::coroutine_handle<> waiter;
  bool await_ready() const { return open; }
  void await_suspend(std::coroutine_handle<> h) { waiter = h; }
  int await_resume() const { return value; }
  void Open(int v) {
    open = true;
    value = v;
    if (auto w = std::exchange(waiter, {})) w.resume();
  }
};

Task<int> Wait(Gate& g, int* runs) {
  ++*runs;
  co_return co_await g;
}

TEST(TaskTest, IsLazyUntilStartedOrAwaited) {
  Gate g;
  int runs = 0;
  Task<int> t = Wait(g, &runs);
  EXPECT_EQ(runs, 0);
  t.Start();
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(t.IsReady());
  g.Open(7);
  ASSERT_TRUE(t.IsReady());
  EXPECT_EQ(t.await_resume(), 7);
}

Task<int> Thrower(Gate& g) {
  co_await g;
  throw std::runtime_error("boom");
}

Task<std::string> CatchIt(Gate& g) {
  try {
    co_await Thrower(g);
  } catch (const std::runtime_error& e) {
    co_return std::string("caught ") + e.what();
  }
  co_return "no";
}

TEST(TaskTest, ExceptionsPropagateToTheAwaiter) {
  Gate g;
  Task<std::string> t = CatchIt(g);
  t.Start();
  g.Open(0);
  ASSERT_TRUE(t.IsReady());
  EXPECT_EQ(t.await_resume(), "caught boom");
}

Task<std::vector<int>> All(Gate& a, Gate& b, Gate& c, int* runs) {
  std::vector<Task<int>> tasks;
  tasks.push_back(Wait(a, runs));
  tasks.push_back(Wait(b, runs));
  tasks.push_back(Wait(c, runs));
  co_return co_await WhenAll(std::move(tasks));
}

TEST(TaskTest, WhenAllStartsEverythingAndKeepsOrder) {
  Gate a, b, c;
  int runs = 0;
  Task<std::vector<int>> t = All(a, b, c, &runs);
  t.Start();
  EXPECT_EQ(runs, 3);  // all started before any completed
  c.Open(3);
  a.Open(1);
  EXPECT_FALSE(t.IsReady());
  b.Open(2);
  ASSERT_TRUE(t.IsReady());
  EXPECT_EQ(t.await_resume(), (std::vector<int>{1, 2, 3}));
}

Task<std::vector<int>> AllWithFailure(Gate& a, Gate& b) {
  std::vector<Task<int>> tasks;
  tasks.push_back(Thrower(a));
  int runs = 0;
  tasks.push_back(Wait(b, &runs));
  co_return co_await WhenAll(std::move(tasks));
}

TEST(TaskTest, WhenAllRethrowsOnlyAfterAllCompleted) {
  Gate a, b;
  Task<std::vector<int>> t = AllWithFailure(a, b);
  t.Start();
  a.Open(0);  // fails
  EXPECT_FALSE(t.IsReady());
  b.Open(5);
  ASSERT_TRUE(t.IsReady());
  EXPECT_THROW(t.await_resume(), std::runtime_error);
}

Task<int> Any(Gate& a, Gate& b, size_t* winner) {
  int runs = 0;
  Task<int> ta = Wait(a, &runs);
  Task<int> tb = Wait(b, &runs);
  *winner = co_await WhenAny(ta, tb);
  // Not `cond ? co_await ta : co_await tb`: g++ 12 miscompiles co_await
  // inside a conditional expression.
  if (*winner == 0) co_return co_await ta;
  co_return co_await tb;
}

TEST(TaskTest, WhenAnyYieldsTheFirstToComplete) {
  Gate a, b;
  size_t winner = 99;
  Task<int> t = Any(a, b, &winner);
  t.Start();
  EXPECT_FALSE(t.IsReady());
  b.Open(42);
  ASSERT_TRUE(t.IsReady());
  EXPECT_EQ(winner, 1u);
  EXPECT_EQ(t.await_resume(), 42);
  // The loser was destroyed with the frame; opening its gate later would be a
  // use-after-free if the gate still held the waiter. Gates here are plain
  // test objects, so just check that the waiter was registered.
  EXPECT_TRUE(a.waiter);
}

TEST(TaskTest, WhenAnyWithAnAlreadyCompletedTask) {
  Gate a, b;
  a.open = true;
  a.value = 1;
  size_t winner = 99;
  Task<int> t = Any(a, b, &winner);
  t.Start();
  ASSERT_TRUE(t.IsReady());
  EXPECT_EQ(winner, 0u);
  EXPECT_EQ(t.await_resume(), 1);
}

}  // namespace
}  // namespace baton
