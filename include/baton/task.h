// Task<T>: the coroutine type of deterministic durable code.
//
// Orchestrators, and any helper coroutine they call, return `baton::Task<T>`.
// A Task is lazy (it runs when first awaited or started), move-only, owns its
// coroutine frame, resumes its awaiter by symmetric transfer, and carries
// either a value or an exception.
//
// Inside a Task only Baton awaitables can be awaited: other Tasks and the
// durable operations of OrchestrationContext. Awaiting anything else (an
// asio::awaitable, a socket read) is a compile error, because orchestrator
// code must be deterministic and may do no I/O of its own.
//
// Durable operations are lazy like any Task: `ctx.CallActivity(...)` schedules
// the activity when the returned Task is first awaited or started.
// `WhenAll` and `WhenAny` start their tasks in argument order, which makes the
// order of scheduled actions — and so replay — deterministic.
//
// Thread-safety: none. A Task and everything it awaits run on the one thread
// that executes the orchestration episode.
#pragma once

#include <cassert>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace baton {

template <typename T = void>
class Task;

namespace detail {

// Base of every type that durable code may co_await.
struct DurableAwaitable {};

template <typename A>
concept BatonAwaitable = std::derived_from<std::remove_cvref_t<A>, DurableAwaitable>;

class PromiseBase;

// Forwards the awaiting protocol to an awaiter that stays where it is.
template <typename A>
struct AwaiterRef {
  A* awaiter;
  bool await_ready() { return awaiter->await_ready(); }
  auto await_suspend(std::coroutine_handle<> h) { return awaiter->await_suspend(h); }
  decltype(auto) await_resume() { return awaiter->await_resume(); }
};

// Notified when a task it watches completes (used by WhenAny). Returns the
// coroutine to resume next, or std::noop_coroutine().
class CompletionListener {
 public:
  virtual std::coroutine_handle<> OnTaskCompleted(PromiseBase* completed) noexcept = 0;

 protected:
  ~CompletionListener() = default;
};

class PromiseBase {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      p.done_ = true;
      if (p.continuation_) return p.continuation_;
      if (p.listener_) return p.listener_->OnTaskCompleted(&p);
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  // Only Baton awaitables may be awaited in durable code.
  // g++ 12 stores what await_transform returns in the coroutine frame by
  // copy, and would keep a temporary operand on the stack across the
  // suspension. So a temporary awaiter is moved into the frame (it must be
  // movable until it suspends), and a named one is used in place through a
  // pointer (it lives in the frame already, or in the caller's).
  template <BatonAwaitable A>
    requires(!std::is_reference_v<A>)
  A await_transform(A&& a) noexcept(std::is_nothrow_move_constructible_v<A>) {
    return std::move(a);
  }
  template <BatonAwaitable A>
  AwaiterRef<A> await_transform(A& a) noexcept {
    return AwaiterRef<A>{&a};
  }
  template <typename A>
    requires(!BatonAwaitable<A>)
  void await_transform(A&&) = delete;  // durable code cannot await I/O: use an activity

  bool done() const { return done_; }
  void set_listener(CompletionListener* l) { listener_ = l; }

 protected:
  friend class TaskBase;
  std::coroutine_handle<> continuation_;
  CompletionListener* listener_ = nullptr;
  std::exception_ptr exception_;
  bool started_ = false;
  bool done_ = false;
};

template <typename T>
class Promise final : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <typename U>
    requires std::convertible_to<U&&, T>
  void return_value(U&& v) {
    value_.emplace(std::forward<U>(v));
  }
  T Take() {
    if (exception_) std::rethrow_exception(exception_);
    assert(value_.has_value() && "Task value taken twice");
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class Promise<void> final : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void Take() {
    if (exception_) std::rethrow_exception(exception_);
  }
};

// The type-erased part of a Task, so that WhenAny can watch tasks of
// different result types.
class TaskBase : public DurableAwaitable {
 public:
  TaskBase(const TaskBase&) = delete;
  TaskBase& operator=(const TaskBase&) = delete;

  // True once the coroutine ran to completion (with a value or an exception).
  bool IsReady() const { return promise_ != nullptr && promise_->done_; }

  // Runs the coroutine until its first suspension if it has not started.
  // REQUIRES: the task holds a coroutine.
  void Start() {
    assert(promise_ != nullptr);
    if (!promise_->started_) {
      promise_->started_ = true;
      handle_.resume();
    }
  }

  bool Valid() const { return promise_ != nullptr; }
  PromiseBase* promise_base() const { return promise_; }

 protected:
  TaskBase() = default;
  TaskBase(std::coroutine_handle<> h, PromiseBase* p) : handle_(h), promise_(p) {}
  TaskBase(TaskBase&& o) noexcept
      : handle_(std::exchange(o.handle_, {})), promise_(std::exchange(o.promise_, nullptr)) {}
  TaskBase& operator=(TaskBase&& o) noexcept {
    if (this != &o) {
      Destroy();
      handle_ = std::exchange(o.handle_, {});
      promise_ = std::exchange(o.promise_, nullptr);
    }
    return *this;
  }
  ~TaskBase() { Destroy(); }

  void Destroy() {
    if (handle_) handle_.destroy();
    handle_ = {};
    promise_ = nullptr;
  }

  // Awaiting protocol shared by every Task<T>.
  bool ReadyToResume() const { return promise_->done_; }
  std::coroutine_handle<> SuspendAwaiter(std::coroutine_handle<> awaiting) {
    promise_->continuation_ = awaiting;
    if (!promise_->started_) {
      promise_->started_ = true;
      return handle_;  // symmetric transfer: run the task now
    }
    return std::noop_coroutine();  // it is already running; it resumes us when done
  }

  std::coroutine_handle<> handle_;
  PromiseBase* promise_ = nullptr;
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task final : public detail::TaskBase {
 public:
  using promise_type = detail::Promise<T>;
  using value_type = T;

  Task() = default;  // holds no coroutine; only assignable
  Task(Task&&) noexcept = default;
  Task& operator=(Task&&) noexcept = default;

  // Awaiting a Task starts it (if needed) and yields its value, or rethrows
  // its exception. The value is moved out: await a given task once.
  bool await_ready() const noexcept { return ReadyToResume(); }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    return SuspendAwaiter(awaiting);
  }
  T await_resume() { return promise().Take(); }

 private:
  friend class detail::Promise<T>;
  explicit Task(std::coroutine_handle<promise_type> h) : TaskBase(h, &h.promise()) {}
  promise_type& promise() const { return *static_cast<promise_type*>(promise_); }
};

namespace detail {
template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// Awaits the first of several tasks to complete; yields its index.
class AnyAwaiter final : public DurableAwaitable, public CompletionListener {
 public:
  explicit AnyAwaiter(std::vector<TaskBase*> tasks) : tasks_(std::move(tasks)) {}
  AnyAwaiter(const AnyAwaiter&) = delete;
  // Movable only before it is awaited (see PromiseBase::await_transform).
  AnyAwaiter(AnyAwaiter&& o) noexcept
      : tasks_(std::move(o.tasks_)), waiter_(o.waiter_), winner_(o.winner_) {}
  ~AnyAwaiter() { Detach(); }

  bool await_ready() {
    for (TaskBase* t : tasks_) t->Start();
    for (size_t i = 0; i < tasks_.size(); ++i) {
      if (tasks_[i]->IsReady()) {
        winner_ = i;
        return true;
      }
    }
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    for (TaskBase* t : tasks_) t->promise_base()->set_listener(this);
  }
  size_t await_resume() {
    Detach();
    return winner_;
  }
  std::coroutine_handle<> OnTaskCompleted(PromiseBase* completed) noexcept override {
    for (size_t i = 0; i < tasks_.size(); ++i) {
      if (tasks_[i]->promise_base() == completed) winner_ = i;
    }
    Detach();
    return waiter_ ? waiter_ : std::noop_coroutine();
  }

 private:
  void Detach() {
    for (TaskBase* t : tasks_) {
      if (t->Valid()) t->promise_base()->set_listener(nullptr);
    }
  }
  std::vector<TaskBase*> tasks_;
  std::coroutine_handle<> waiter_;
  size_t winner_ = 0;
};

}  // namespace detail

// Starts every task (in order) and completes when all have completed. Yields
// their values in order. If any failed, rethrows the first failure (in
// argument order) after all have completed. Never call with an empty vector
// of tasks you still need: the tasks are consumed.
template <typename T>
Task<std::vector<T>> WhenAll(std::vector<Task<T>> tasks) {
  for (auto& t : tasks) t.Start();
  std::vector<T> values;
  values.reserve(tasks.size());
  std::exception_ptr first_failure;
  for (auto& t : tasks) {
    try {
      values.push_back(co_await t);
    } catch (...) {
      if (!first_failure) first_failure = std::current_exception();
    }
  }
  if (first_failure) std::rethrow_exception(first_failure);
  co_return values;
}

inline Task<void> WhenAll(std::vector<Task<void>> tasks) {
  for (auto& t : tasks) t.Start();
  std::exception_ptr first_failure;
  for (auto& t : tasks) {
    try {
      co_await t;
    } catch (...) {
      if (!first_failure) first_failure = std::current_exception();
    }
  }
  if (first_failure) std::rethrow_exception(first_failure);
}

// Starts every task (in order) and completes when the first completes
// (successfully or not). Yields the winner's index; `co_await tasks[i]` then
// gives its value immediately. The other tasks keep running and may be
// awaited later; destroying a pending durable task abandons it (a late result
// is ignored; a pending WaitForExternalEvent stops consuming events).
// REQUIRES: tasks is not empty; no task is being awaited by another coroutine.
template <typename T>
Task<size_t> WhenAny(std::vector<Task<T>>& tasks) {
  assert(!tasks.empty());
  std::vector<detail::TaskBase*> bases;
  bases.reserve(tasks.size());
  for (auto& t : tasks) bases.push_back(&t);
  co_return co_await detail::AnyAwaiter(std::move(bases));
}

// The same for tasks of different types: `co_await WhenAny(event, timer)`.
template <typename... Ts>
  requires(sizeof...(Ts) >= 1)
Task<size_t> WhenAny(Task<Ts>&... tasks) {
  std::vector<detail::TaskBase*> bases;
  bases.reserve(sizeof...(Ts));
  (bases.push_back(&tasks), ...);
  co_return co_await detail::AnyAwaiter(std::move(bases));
}

}  // namespace baton
