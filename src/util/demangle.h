// The readable name of a C++ type, for failure details built from exceptions.
#pragma once

#include <string>
#include <typeinfo>

namespace baton::util {

// "std::runtime_error" for typeid(std::runtime_error).name(); the raw name
// when it cannot be demangled.
std::string Demangle(const char* mangled);

// The error type recorded for an exception: its dynamic type's name.
template <typename E>
std::string TypeNameOf(const E& e) {
  return Demangle(typeid(e).name());
}

}  // namespace baton::util
