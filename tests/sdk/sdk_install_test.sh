#!/usr/bin/env bash
# SdkInstall: installs the SDK component of BUILD into a temporary prefix,
# builds examples/ against it as a user would (find_package(Baton), the
# shared and the static library, then pkg-config), and runs the programs.
#   sdk_install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND"' ERR
build="$1"
source="$2"
work="$(mktemp -d "${TMPDIR:-/tmp}/baton-sdk-install-XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

# The README's C++ example is examples/hello.cc (from its first #include on).
awk '/^## Writing an orchestration/{s=1} s&&/^```cpp/{c=1;next} c&&/^```/{exit} c' "$source/README.md" > "$work/readme.cc"
sed -n '/^#include <baton\/client.h>/,$p' "$source/examples/hello.cc" > "$work/hello.cc"
diff -u "$work/hello.cc" "$work/readme.cc" || { echo "FAIL: the README's example is not examples/hello.cc"; exit 1; }

cmake --install "$build" --component sdk --prefix "$prefix" >/dev/null
for f in include/baton/worker.h lib/libbaton.a lib/cmake/Baton/BatonConfig.cmake lib/pkgconfig/baton.pc; do
  [ -f "$prefix/$f" ] || { echo "FAIL: the install lacks $f"; exit 1; }
done
[ -e "$prefix/lib/libbaton.so" ] || { echo "FAIL: the install lacks lib/libbaton.so"; exit 1; }
# Only the SDK: no server binary, no private header.
# (Outputs are read whole before grep -q: under pipefail, a writer that grep -q
# left early dies of SIGPIPE and fails the pipeline.)
stray="$(find "$prefix" -name '*.h' | grep -v '/include/baton/' || true)"
if [ -n "$stray" ]; then
  echo "FAIL: headers outside include/baton:"; find "$prefix" -name '*.h' | grep -v '/include/baton/'; exit 1
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source/examples" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" >/dev/null
cmake --build "$work/build"
[ -x "$work/build/hello_static" ] || { echo "FAIL: Baton::baton_static was not found"; exit 1; }
for program in hello hello_static; do
  out="$("$work/build/$program" "$work/$program.db")"
  echo "$program: $out"
  grep -q 'completed: \["Hello, Tokyo!",true\]' <<<"$out" || { echo "FAIL: $program printed '$out'"; exit 1; }
done
# The shared one really uses the installed libbaton.so.
libs="$(ldd "$work/build/hello")"
grep -qF "$prefix/lib/libbaton.so" <<<"$libs" || { echo "FAIL: hello does not load $prefix/lib/libbaton.so"; echo "$libs"; exit 1; }

# pkg-config: its flags compile a program and link it (the object compiled above).
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
echo '#include <baton/status.h>
int main() { return baton::Status::Ok().ok() ? 0 : 1; }' > "$work/pc.cc"
c++ $(pkg-config --cflags baton) -Wall -Wextra -Werror -c "$work/pc.cc" -o "$work/pc.o"
c++ "$work/pc.o" -o "$work/pc" $(pkg-config --libs baton) -Wl,-rpath,"$prefix/lib"
"$work/pc"
object="$(find "$work/build" -name 'hello.cc.o' -print -quit)"
c++ "$object" -o "$work/hello_pc" $(pkg-config --libs baton) -Wl,-rpath,"$prefix/lib"
out="$("$work/hello_pc" "$work/pc.db")"
grep -q 'completed:' <<<"$out" || { echo "FAIL: the pkg-config build did not run: '$out'"; exit 1; }
echo "PASS: installed SDK: CMake package (shared and static) and pkg-config"
