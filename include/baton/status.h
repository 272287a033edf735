// Status and Result<T>: how every Baton layer reports success or failure.
//
// Baton does not throw across its API. Functions that can fail return a
// `Status` (no value) or a `Result<T>` (a value or a non-OK Status). Codes are
// modelled on the canonical gRPC codes so they map one-to-one onto gRPC status
// codes and onto HTTP statuses (see `HttpStatusFor`).
//
// The one place exceptions are used is inside orchestrator code: awaiting a
// failed durable task throws `baton::TaskFailedError` (orchestration.h), which
// the orchestrator may catch.
//
// Thread-safety: Status and Result are values; distinct objects may be used
// from distinct threads freely.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace baton {

// Values are the gRPC canonical codes.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "NOT_FOUND" style name of a code, as gRPC spells it.
std::string_view StatusCodeName(StatusCode code);

// The HTTP status that a REST API should answer for `code`.
int HttpStatusFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NOT_FOUND: instance 'x' does not exist", or "OK".
  std::string ToString() const;

  // Marks a status as deliberately not inspected.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFoundError(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status AlreadyExistsError(std::string m) {
  return Status(StatusCode::kAlreadyExists, std::move(m));
}
inline Status FailedPreconditionError(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status DeadlineExceededError(std::string m) {
  return Status(StatusCode::kDeadlineExceeded, std::move(m));
}
inline Status PermissionDeniedError(std::string m) {
  return Status(StatusCode::kPermissionDenied, std::move(m));
}
inline Status ResourceExhaustedError(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
inline Status InternalError(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }
inline Status UnavailableError(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status AbortedError(std::string m) { return Status(StatusCode::kAborted, std::move(m)); }
inline Status CancelledError(std::string m) {
  return Status(StatusCode::kCancelled, std::move(m));
}
inline Status UnimplementedError(std::string m) {
  return Status(StatusCode::kUnimplemented, std::move(m));
}
inline Status DataLossError(std::string m) { return Status(StatusCode::kDataLoss, std::move(m)); }

// A value of type T, or a non-OK Status explaining why there is none.
//
// REQUIRES: a Result is never constructed from an OK Status.
// Accessing value() of a failed Result is a programming error (asserts).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }

  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace baton

// Returns early from the enclosing function with the Status of `expr` when it
// is not OK. Works inside functions returning Status or Result<T>.
#define BATON_RETURN_IF_ERROR(expr)          \
  do {                                       \
    ::baton::Status baton_status_ = (expr);  \
    if (!baton_status_.ok()) return baton_status_; \
  } while (0)

#define BATON_CONCAT_INNER_(a, b) a##b
#define BATON_CONCAT_(a, b) BATON_CONCAT_INNER_(a, b)
// `BATON_ASSIGN_OR_RETURN(auto x, Foo());` declares x from a Result, or returns its Status.
#define BATON_ASSIGN_OR_RETURN(lhs, expr)                                  \
  auto BATON_CONCAT_(baton_result_, __LINE__) = (expr);                    \
  if (!BATON_CONCAT_(baton_result_, __LINE__).ok())                        \
    return BATON_CONCAT_(baton_result_, __LINE__).status();                \
  lhs = std::move(BATON_CONCAT_(baton_result_, __LINE__)).value()
