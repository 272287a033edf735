// EntityId: the address of a durable entity (entity.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace baton {

struct EntityId {
  std::string name;  // case-insensitive: kept lower-cased
  std::string key;   // case-sensitive; any text

  EntityId() = default;
  EntityId(std::string entity_name, std::string entity_key);

  // "@name@key".
  std::string ToInstanceId() const;
  // Parses "@name@key" (a task hub prefix "<hub>::" is skipped). nullopt
  // when `instance_id` is not an entity id.
  static std::optional<EntityId> FromInstanceId(std::string_view instance_id);

  friend bool operator==(const EntityId&, const EntityId&) = default;
};

}  // namespace baton
