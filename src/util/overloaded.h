// Overloaded: a set of lambdas as one visitor for std::visit, so that a
// variant kind without a handler fails to compile.
#pragma once

namespace baton::util {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace baton::util
