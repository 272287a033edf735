/* baton-exec: the entrypoint Baton puts in front of a job's own command
 * (docs/job-spec.md#secrets).
 *
 * Docker shows a container's environment to anyone who may inspect it, so
 * secret values never go into the container's config. Baton makes each one a
 * file /run/baton/secrets/.env/<NAME> (a bind-mounted tmpfs directory with
 * the Docker backend, a swarm secret with the Swarm backend) and starts the
 * container as
 *   /run/baton/exec <the job's command and arguments...>
 * This program sets no_new_privs (PR_SET_NO_NEW_PRIVS: setuid and file
 * capabilities grant nothing to it or anything it execs -- the Swarm backend
 * relies on it, since a swarm service cannot ask for no-new-privileges), sets
 * every NAME to its file's content, then execs the job's command in its
 * place: same PID (1), same signals, same exit code.
 *
 * It is C, linked statically (with musl when the build has musl-gcc, which
 * keeps it under the 500 KiB a swarm config may hold), so it runs in any
 * image, FROM scratch included.
 *
 * With BATON_EXEC_REQUIRE_NO_NETWORK=1 in its environment (the Swarm
 * backend's jobs with network "none": a swarm service cannot ask for no
 * network, and gets the node's default one), it first checks that the
 * container has no network interface but loopback, and refuses to run the
 * job otherwise; the variable is not passed on.
 *
 * Exit codes of its own (the job's command never started): 127 when the
 * command cannot be found or run, 126 when it is not executable, 125 when a
 * secret cannot be read, no_new_privs cannot be set, or the container has a
 * network it must not have. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char kEnvDir[] = "/run/baton/secrets/.env";
static const char kRequireNoNetwork[] = "BATON_EXEC_REQUIRE_NO_NETWORK";
enum { kMaxValue = 64 * 1024 };

static int ReadFile(int dir, const char* name, char* buf, size_t cap, size_t* len) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  *len = n;
  return 1;
}

/* 0 when the only network interface is loopback; else 1, with the others
 * named in `found` (from /proc/net/dev: two header lines, then "name: …"). */
static int HasNetwork(char* found, size_t cap) {
  FILE* dev = fopen("/proc/net/dev", "re");
  if (dev == NULL) {
    snprintf(found, cap, "/proc/net/dev unreadable: %s", strerror(errno));
    return 1;
  }
  char line[512];
  int other = 0;
  found[0] = '\0';
  for (int n = 0; fgets(line, sizeof line, dev) != NULL; ++n) {
    if (n < 2) continue;
    char* name = line;
    while (*name == ' ') ++name;
    char* colon = strchr(name, ':');
    if (colon == NULL) continue;
    *colon = '\0';
    if (strcmp(name, "lo") == 0) continue;
    other = 1;
    size_t used = strlen(found);
    if (used + 34 < cap) snprintf(found + used, cap - used, "%s%.32s", used ? " " : "", name);
  }
  fclose(dev);
  return other;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "baton-exec: no command to run\n");
    return 127;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fprintf(stderr, "baton-exec: cannot set no_new_privs: %s\n", strerror(errno));
    return 125;
  }
  const char* no_network = getenv(kRequireNoNetwork);
  if (no_network != NULL && strcmp(no_network, "1") == 0) {
    char found[256];
    if (HasNetwork(found, sizeof found)) {
      fprintf(stderr,
              "baton-exec: the job asked for no network, but this container has %s: the node's dockerd must run "
              "without a default bridge (\"bridge\": \"none\"; docs/cluster.md)\n",
              found);
      return 125;
    }
  }
  unsetenv(kRequireNoNetwork);
  DIR* dir = opendir(kEnvDir);
  if (dir != NULL) {
    static char value[kMaxValue + 1];
    struct dirent* e;
    while ((e = readdir(dir)) != NULL) {
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
