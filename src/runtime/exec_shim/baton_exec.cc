// baton-exec: the entrypoint Baton puts in front of a job's own command when
// the job has secret environment variables (docs/job-spec.md#secrets).
//
// Docker shows a container's environment to anyone who may inspect it, so
// secret values never go into the container's config. Baton writes each one
// as a file /run/baton/secrets/.env/<NAME> on a tmpfs of the node, mounts
// that directory read-only, and starts the container as
//   /run/baton/exec <the job's command and arguments…>
// This program sets every NAME to its file's content, then execs the job's
// command in its place: same PID (1), same signals, same exit code. It is
// linked statically, so it runs in any image, `FROM scratch` included.
//
// Exit codes of its own (the job's command never started): 127 when the
// command cannot be found or run, 126 when it is not executable, 125 when a
// secret cannot be read.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace {

constexpr const char kEnvDir[] = "/run/baton/secrets/.env";
constexpr size_t kMaxValue = 64 * 1024;

bool ReadFile(int dir, const char* name, char* buf, size_t cap, size_t* len) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  close(fd);
  *len = n;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "baton-exec: no command to run\n");
    return 127;
  }
  DIR* dir = opendir(kEnvDir);
  if (dir != nullptr) {
    static char value[kMaxValue + 1];
    while (struct dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      size_t len = 0;
      if (!ReadFile(dirfd(dir), e->d_name, value, kMaxValue, &len)) {
        fprintf(stderr, "baton-exec: cannot read secret %s: %s\n", e->d_name, strerror(errno));
        return 125;
      }
      value[len] = '\0';
      if (setenv(e->d_name, value, 1) != 0) {
        fprintf(stderr, "baton-exec: cannot set %s: %s\n", e->d_name, strerror(errno));
        return 125;
      }
    }
    closedir(dir);
  } else if (errno != ENOENT) {
    fprintf(stderr, "baton-exec: cannot open %s: %s\n", kEnvDir, strerror(errno));
    return 125;
  }
  execvp(argv[1], argv + 1);
  int err = errno;
  fprintf(stderr, "baton-exec: cannot run %s: %s\n", argv[1], strerror(err));
  return err == EACCES ? 126 : 127;
}
