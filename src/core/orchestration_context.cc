#include "baton/orchestration.h"

namespace baton {

DurableError::DurableError(std::string error_type, std::string message, const Json& details,
                           bool non_retriable)
    : std::runtime_error(message) {
  details_.error_type = std::move(error_type);
  details_.error_message = std::move(message);
  details_.details = ToPayload(details);
  details_.is_non_retriable = non_retriable;
}

DurableError::DurableError(FailureDetails details)
    : std::runtime_error(details.error_message), details_(std::move(details)) {}

}  // namespace baton
