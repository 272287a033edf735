// What rewinding a Failed orchestration takes, decided against the store:
// the rewritten history (core/rewind.h), the children to rewind with it, the
// answers of children that ended while it was Failed, or why it cannot be
// rewound. Used by Client::Rewind (to refuse at once) and by the Worker (to
// do it). Thread-safety: as the Store's reads.
#pragma once

#include <string>
#include <vector>

#include "baton/status.h"
#include "baton/store.h"

namespace baton::engine {

struct RewindPlan {
  bool ended = true;                        // false: no run has ended, nothing to rewind
  std::string refusal;                      // non-empty: it cannot be rewound
  std::vector<HistoryEvent> events;         // the history to run again from
  std::vector<std::string> rewind_children; // failed children of this instance, rewound with it
  std::vector<Message> answers;             // children's answers given again, to the instance
  size_t recreated = 0;                     // children the replay creates anew
};

// `execution_id` is the instance's (the answers name it). A failed child is
// rewound when it is still this instance's and Failed (or already being
// rewound), and its own rewind is possible (checked recursively); one that
// has since ended answers again; one that is gone or is not this instance's
// is created anew. Errors are the store's, other than NotFound.
Result<RewindPlan> PlanRewind(Store& store, const std::string& instance_id, const std::string& execution_id,
                              TimePoint now, int depth = 0);

// Whether an inbox event answers a task, timer or child (what a rewind
// neither keeps nor sends again: the rewound run gets its answers anew).
bool IsAnswer(const EventBody& body);

}  // namespace baton::engine
