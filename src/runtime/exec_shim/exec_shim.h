// The baton-exec program (baton_exec.c), embedded in the binary at build
// time: a container runtime writes it where containers can mount it.
#pragma once

#include <string_view>

namespace baton::runtime {

// The bytes of the static baton-exec executable.
std::string_view ExecShimProgram();

}  // namespace baton::runtime
