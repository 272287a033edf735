// Sample orchestrations and activities the `baton` binary registers, so a
// fresh install has something to run.
#pragma once

#include "baton/registry.h"

namespace baton::app {

// "HelloCities": calls activity "SayHello" once per city of its input (a JSON
// array of strings), one after the other, and returns the greetings.
// "Hello5": five "SayHello" calls in sequence (the benchmark workload).
// "AwaitApproval": waits for an event named "approve" and returns it.
// Entity "Counter": operations "add" (a number), "reset", "get", "delete".
// "LockAndWait": locks Counter/<input>, waits for event "release", adds 1.
// "FailWith": fails with error type "SampleFailure" and its input (a string)
// as the message.
void RegisterSamples(Registry& registry);

}  // namespace baton::app
