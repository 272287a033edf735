#include "runtime/exec_shim/exec_shim.h"

extern "C" const char baton_exec_shim_begin[];
extern "C" const char baton_exec_shim_end[];

namespace baton::runtime {

std::string_view ExecShimProgram() {
  return std::string_view(baton_exec_shim_begin, static_cast<size_t>(baton_exec_shim_end - baton_exec_shim_begin));
}

}  // namespace baton::runtime
