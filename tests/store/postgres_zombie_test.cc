// Zombie fencing across processes (issue 12, "Must show" 2): node A (a child
// process with its own PostgresStore, tests/store/pg_zombie_node.cc) fetches
// a work item and is SIGSTOPped past its lease; node B (this process, its own
// store) takes the work and completes it; A is SIGCONTed and commits what it
// was about to. A's commit must be refused and nothing it sends written; the
// history holds every event once. The same for an activity: it ran twice,
// one result is recorded.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "baton/postgres_store.h"
#include "store/postgres/pg_connection.h"
#include "testing/postgres_test_db.h"

namespace baton {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kZombieLeaseMs = 1500;

// The node child: stdin and stdout are pipes; SIGKILLed and reaped at the end.
class ZombieNode {
 public:
  ZombieNode(const std::string& url, const std::string& mode) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      close(in[0]);
      close(in[1]);
      close(out[0]);
      close(out[1]);
      std::string lease = std::to_string(kZombieLeaseMs);
      execl(BATON_PG_ZOMBIE_NODE, BATON_PG_ZOMBIE_NODE, url.c_str(), mode.c_str(), lease.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = fdopen(in[1], "w");
    stdout_ = fdopen(out[0], "r");
  }
  ~ZombieNode() {
    if (pid_ > 0) {
      kill(pid_, SIGCONT);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdin_) std::fclose(stdin_);
    if (stdout_) std::fclose(stdout_);
  }
  // The next line the node prints ("" at EOF: it died).
  std::string ReadLine() {
    char line[512];
    if (std::fgets(line, sizeof line, stdout_) == nullptr) return std::string();
    std::string l(line);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    return l;
  }
  void Send(const std::string& line) {
    std::fprintf(stdin_, "%s\n", line.c_str());
    std::fflush(stdin_);
  }
  void Stop() { kill(pid_, SIGSTOP); }
  void Continue() { kill(pid_, SIGCONT); }
  int Wait() {
    int status = -1;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* stdin_ = nullptr;
  FILE* stdout_ = nullptr;
};

class PostgresZombieTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::CreateTestDatabase();
    ASSERT_FALSE(url_.empty());
    PostgresStoreOptions o;
    o.url = url_;
    o.node_id = "node-b";
    auto store = OpenPostgresStore(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    b_ = std::move(store).value();
  }

  std::vector<std::string> Column(const std::string& sql) {
    auto conn = pg::PgConnection::Connect(url_, "");
    EXPECT_TRUE(conn.ok());
    std::vector<std::string> out;
    if (!conn.ok()) return out;
    auto r = (*conn)->Exec(sql, "test query");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      for (int i = 0; i < r->rows(); ++i) out.push_back(r->Text(i, 0));
    }
    return out;
  }

  Status Create(const std::string& id) {
    CreateInstanceRequest r;
    r.instance_id = id;
    r.name = "Orch";
    r.execution_id = id + "-e1";
    return b_->CreateInstance(r);
  }
  Status Commit(const OrchestrationWorkItem& item, OrchestrationUpdate u) {
    std::promise<Status> done;
    auto f = done.get_future();
    b_->CompleteOrchestrationWorkItem(item, std::move(u),
                                      [&done](const Status& s) { done.set_value(s); });
    return f.get();
  }
  // Node B's fetch of `id`: it gets it only once A's lease has expired by the
  // database's clock (bounded by a 30 s hang guard).
  std::optional<OrchestrationWorkItem> TakeOver(const std::string& id) {
    auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = b_->FetchOrchestrationWorkItem(milliseconds(500));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok() && r->has_value()) {
        if ((*r)->instance_id == id) return std::move(**r);
        // Another instance (the bystander): start it, so it is out of the way.
        OrchestrationUpdate u;
        u.execution_id = (*r)->instance.execution_id;
        u.status = OrchestrationStatus::kRunning;
        EXPECT_TRUE(Commit(**r, u).ok());
      }
    }
    return std::nullopt;
  }

  std::string url_;
  std::unique_ptr<Store> b_;
};

TEST_F(PostgresZombieTest, AStoppedNodesEpisodeIsRefusedAfterAnotherNodeCompletedTheInstance) {
  ASSERT_TRUE(Create("victim").ok());
  ZombieNode a(url_, "orchestration");
  std::string fetched = a.ReadLine();
  ASSERT_EQ(fetched.rfind("FETCHED victim ", 0), 0u) << fetched;
  a.Stop();                               // before it could renew, commit or do anything else
  ASSERT_TRUE(Create("bystander").ok());  // a target for A's outbox

  std::optional<OrchestrationWorkItem> item = TakeOver("victim");
  ASSERT_TRUE(item.has_value()) << "node B never got the instance";
  EXPECT_EQ(item->dequeue_count, 2);
  EXPECT_NE(std::to_string(item->lock_token), fetched.substr(15));
  // Whole microseconds: what the history keeps.
  const TimePoint now = FromUnixMicros(ToUnixMicros(std::chrono::system_clock::now()));
  OrchestrationUpdate u;
  u.execution_id = item->instance.execution_id;
  u.status = OrchestrationStatus::kCompleted;
  u.output = "\"b\"";
  u.new_events = {HistoryEvent{-1, now, events::OrchestratorStarted{}}, item->messages[0].event,
                  HistoryEvent{-1, now,
                               events::ExecutionCompleted{OrchestrationStatus::kCompleted, "\"b\"",
                                                          std::nullopt}}};
  const std::vector<HistoryEvent> expected = u.new_events;
  u.sync = true;
  ASSERT_TRUE(Commit(*item, u).ok());

  a.Continue();
  a.Send("GO");
  EXPECT_EQ(a.ReadLine(), "RESULT ABORTED");
  EXPECT_EQ(a.Wait(), 0);

  auto history = b_->GetHistory("victim");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(*history, expected) << "every event once, none of the zombie's";
  auto state = b_->GetInstance("victim", true);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->output, "\"b\"");
  EXPECT_EQ(Column("SELECT count(*) FROM activity_tasks"), std::vector<std::string>{"0"})
      << "the zombie's activity was not scheduled";
  EXPECT_EQ(Column("SELECT count(*) FROM inbox WHERE event LIKE '%FromTheZombie%'"),
            std::vector<std::string>{"0"})
      << "the zombie's message was not sent";
  EXPECT_EQ(Column("SELECT count(*) FROM history WHERE instance_id = 'victim'"),
            std::vector<std::string>{"1"});
}

TEST_F(PostgresZombieTest, AStoppedNodesActivityResultIsRefusedAndOneResultIsRecorded) {
  ASSERT_TRUE(Create("worker").ok());
  {
    std::optional<OrchestrationWorkItem> item = TakeOver("worker");
    ASSERT_TRUE(item.has_value());
    OrchestrationUpdate u;
    u.execution_id = item->instance.execution_id;
    u.status = OrchestrationStatus::kRunning;
    u.tasks.push_back(ActivityTask{0, "worker", "worker-e1", 1, "Work", "", "", TimePoint{}});
    ASSERT_TRUE(Commit(*item, u).ok());
  }
  ZombieNode a(url_, "activity");
  std::string fetched = a.ReadLine();
  ASSERT_EQ(fetched.rfind("FETCHED worker ", 0), 0u) << fetched;
  a.Stop();

  // Node B runs the activity again once A's lease is gone, and records it.
  std::optional<ActivityWorkItem> task;
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (!task && std::chrono::steady_clock::now() < deadline) {
    auto r = b_->FetchActivityWorkItem(milliseconds(500));
    ASSERT_TRUE(r.ok());
    if (r->has_value()) task = std::move(**r);
  }
  ASSERT_TRUE(task.has_value()) << "node B never got the task";
  EXPECT_EQ(task->dequeue_count, 2);
  std::promise<Status> done;
  Message result{
      0, "worker", "worker-e1", TimePoint{},
      HistoryEvent{-1, std::chrono::system_clock::now(), events::TaskCompleted{1, "\"b\""}}};
  b_->CompleteActivityWorkItem(*task, result, [&done](const Status& s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());

  a.Continue();
  a.Send("GO");
  EXPECT_EQ(a.ReadLine(), "RESULT ABORTED");
  EXPECT_EQ(a.Wait(), 0);

  std::optional<OrchestrationWorkItem> item = TakeOver("worker");
  ASSERT_TRUE(item.has_value());
  ASSERT_EQ(item->messages.size(), 1u) << "one result recorded";
  EXPECT_EQ(std::get<events::TaskCompleted>(item->messages[0].event.body).result, "\"b\"");
}

}  // namespace
}  // namespace baton
