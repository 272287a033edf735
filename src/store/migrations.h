// Versioned schema migrations, shared by the stores' migration runners.
//
// Each backend keeps its schema as numbered SQL files
// (src/store/<backend>/migrations/NNNN_name.sql) that CMake embeds into a
// generated header (baton_embed_migrations in src/store/CMakeLists.txt) as an
// array of Migration, oldest first. A runner applies, in order and each once,
// the files whose version is above the one the database records in its
// schema_migrations table, and refuses a database whose version is above the
// newest file it knows. An applied file is never edited: a change is a new
// file.
#pragma once

#include <cstddef>

namespace baton::store {

struct Migration {
  int version;       // NNNN of the file name
  const char* name;  // the rest of the file name, without ".sql"
  const char* sql;   // the file's text
};

template <size_t N>
constexpr int LatestVersion(const Migration (&migrations)[N]) {
  return migrations[N - 1].version;
}

}  // namespace baton::store
