// Sample orchestrations and activities the `baton` binary registers, so a
// fresh install has something to run.
#pragma once

#include "baton/registry.h"

namespace baton::app {

// "HelloCities": calls activity "SayHello" once per city of its input (a JSON
// array of strings), one after the other, and returns the greetings.
void RegisterSamples(Registry& registry);

}  // namespace baton::app
