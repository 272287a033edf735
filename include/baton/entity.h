// Durable entities: small pieces of keyed state, changed by operations that
// run one at a time.
//
// An entity is addressed by EntityId{name, key}; its instance id is
// "@<name lower-cased>@<key>". It holds a JSON state and processes the
// operations sent to it strictly one after the other, in arrival order (FIFO
// per sender). Operations queued together run in one batch, committed in one
// transaction with the state and every message the batch sends, with the
// same durability contract as orchestrations.
//
// Operations reach an entity by:
//   - SignalEntity (one-way; from a Client, an orchestration, or another
//     entity; optionally not before a given time);
//   - CallEntity from an orchestration (request/response);
//   - LockEntities from an orchestration, which locks several entities for a
//     critical section: while locked, an entity runs only the lock owner's
//     calls; everything else waits. Locks are taken one entity at a time in
//     the canonical (sorted) order of their ids, so two critical sections can
//     never deadlock.
//
// An operation that throws rolls back its own state change and the messages
// it would have sent; earlier and later operations of the batch are kept. A
// caller (CallEntity) gets the failure as a TaskFailedError.
//
// Entity code may do I/O (it is not replayed); it must be quick, as it holds
// the entity. Register entities by name (registry.h) in function form:
//
//   registry.AddEntity("Counter", [](baton::EntityContext& ctx) -> baton::Json {
//     int value = ctx.GetState<int>(0);
//     if (ctx.OperationName() == "add") ctx.SetState(value + ctx.GetInput<int>());
//     else if (ctx.OperationName() == "reset") ctx.SetState(0);
//     else if (ctx.OperationName() == "get") return value;
//     else throw baton::DurableError("UnknownOperation", ctx.OperationName());
//     return nullptr;
//   });
//
// or in class form, with operations as methods (the object is the state):
//
//   struct Account {
//     int64_t balance = 0;
//     void Deposit(int64_t amount) { balance += amount; }
//     int64_t Balance() const { return balance; }
//   };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, balance)
//   registry.AddEntity("Account", baton::EntityClass<Account>()
//       .Operation("deposit", &Account::Deposit)
//       .Operation("balance", &Account::Balance));
//
// Thread-safety: an EntityContext is used by one operation at a time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "baton/clock.h"
#include "baton/entity_id.h"
#include "baton/json.h"
#include "baton/orchestration.h"

namespace baton {

class EntityContext {
 public:
  virtual ~EntityContext() = default;

  virtual const EntityId& Id() const = 0;
  virtual const std::string& OperationName() const = 0;
  virtual const std::string& RawInput() const = 0;
  template <typename T = Json>
  T GetInput() const {
    return FromPayload(RawInput()).template get<T>();
  }

  // Whether the entity has a state (it has none until an operation sets one,
  // and again after DeleteState()).
  virtual bool HasState() const = 0;
  virtual const Json& RawState() const = 0;  // null without a state
  template <typename T>
  T GetState(T fallback = T{}) const {
    return HasState() ? RawState().template get<T>() : fallback;
  }
  virtual void SetState(Json state) = 0;
  virtual void DeleteState() = 0;

  // Signals another entity (or this one) after this operation succeeds;
  // with `at`, not before that time.
  virtual void SignalEntity(const EntityId& target, const std::string& operation,
                            const Json& input = nullptr,
                            std::optional<TimePoint> at = std::nullopt) = 0;
  // Raises event `name` on orchestration `instance_id` (inside this entity's
  // task hub) after this operation succeeds; dropped if it does not exist.
  virtual void RaiseEvent(const std::string& instance_id, const std::string& name, const Json& data = nullptr) = 0;
  // Starts an orchestration after this operation succeeds. Returns its id
  // ("" = a new random id; inside a task hub, taken relative to it).
  virtual std::string StartNewOrchestration(const std::string& name, const Json& input = nullptr,
                                            const std::string& instance_id = "") = 0;
};

// An entity's code: runs one operation and returns its result (JSON), or
// throws to fail it (DurableError keeps its type and details).
using EntityFn = std::function<Json(EntityContext&)>;

namespace detail {
template <typename M>
struct MethodTraits;
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...)> {
  using Result = R;
  using Args = std::tuple<std::decay_t<A>...>;
};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) const> {
  using Result = R;
  using Args = std::tuple<std::decay_t<A>...>;
};
}  // namespace detail

// Builds an EntityFn from a class whose methods are the operations. The state
// is the object, converted with nlohmann's to_json/from_json; an entity
// without state starts from a default-constructed T. Operation names are
// matched case-insensitively; an unknown one fails with "UnknownOperation".
template <typename T>
class EntityClass {
 public:
  // `method` takes zero or one argument (the operation's input, converted
  // from JSON) and returns void or a value convertible to JSON.
  template <typename M>
  EntityClass& Operation(std::string name, M method) {
    using Traits = detail::MethodTraits<M>;
    static_assert(std::tuple_size_v<typename Traits::Args> <= 1, "an operation takes at most one argument");
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    (*ops_)[name] = [method](T& self, const Json& input) -> Json {
      if constexpr (std::tuple_size_v<typename Traits::Args> == 0) {
        if constexpr (std::is_void_v<typename Traits::Result>) {
          (self.*method)();
          return nullptr;
        } else {
          return Json((self.*method)());
        }
      } else {
        using Arg = std::tuple_element_t<0, typename Traits::Args>;
        Arg arg = input.template get<Arg>();
        if constexpr (std::is_void_v<typename Traits::Result>) {
          (self.*method)(std::move(arg));
          return nullptr;
        } else {
          return Json((self.*method)(std::move(arg)));
        }
      }
    };
    return *this;
  }

  operator EntityFn() const {  // NOLINT: used where an EntityFn is expected
    auto ops = ops_;
    return [ops](EntityContext& ctx) -> Json {
      std::string op = ctx.OperationName();
      for (char& c : op) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto it = ops->find(op);
      if (it == ops->end()) {
        throw DurableError("UnknownOperation", "entity '" + ctx.Id().name + "' has no operation '" +
                                                   ctx.OperationName() + "'");
      }
      T self = ctx.HasState() ? ctx.RawState().template get<T>() : T{};
      Json result = it->second(self, FromPayload(ctx.RawInput()));
      ctx.SetState(Json(self));
      return result;
    };
  }

 private:
  std::shared_ptr<std::map<std::string, std::function<Json(T&, const Json&)>>> ops_ =
      std::make_shared<std::map<std::string, std::function<Json(T&, const Json&)>>>();
};

}  // namespace baton
