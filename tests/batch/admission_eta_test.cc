// The admission ETA estimator (batch/admission_eta.h) on synthetic
// scheduler snapshots with known answers: the queue walked in the
// scheduler's own order (arrival, priority, fair share, tenant quotas),
// running jobs' remaining holds from their elapsed time, the floor for an
// overdue job, jobs without history (a lower bound, or no effect), and what
// EtaJson shows a tenant of other tenants' jobs (counts only).
#include "batch/admission_eta.h"

#include <gtest/gtest.h>

#include "batch/job_eta.h"

namespace baton::batch {
namespace {

using std::chrono::seconds;

class AdmissionEtaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ParseIso8601("2026-12-03T12:00:00Z", &snap_.now));
    snap_.scheduler = {{"capacity", {{"cpu", 2}, {"memoryMb", 4096}}},
                       {"tenants", Json::object()},
                       {"running", Json::object()},
                       {"queue", Json::array()},
                       {"seq", 0}};
  }

  static RunDurations Holds(double p50, double p90) {
    RunDurations d;
    d.samples = 5;
    d.p50 = Seconds(p50);
    d.p90 = Seconds(p90);
    return d;
  }
  void Tenant(const std::string& tenant, const Json& quota, double weight = 1) {
    snap_.scheduler["tenants"][tenant] = {
        {"quota", quota}, {"weight", weight}, {"used", {{"cpu", 0.0}, {"memoryMb", 0.0}, {"jobs", 0.0}}}};
  }
  // A job holding `cpu` since `elapsed` seconds ago; its name's runs held p50/p90.
  void Running(const std::string& tenant, const std::string& key, double cpu, double elapsed,
               std::optional<RunDurations> holds) {
    if (!snap_.scheduler["tenants"].contains(tenant)) Tenant(tenant, {{"cpu", 0}, {"memoryMb", 0}, {"jobs", 0}});
    snap_.scheduler["running"][key] = Entry(tenant, key, cpu, 0);
    Json& used = snap_.scheduler["tenants"][tenant]["used"];
    used["cpu"] = used["cpu"].get<double>() + cpu;
    used["memoryMb"] = used["memoryMb"].get<double>() + 32;
    used["jobs"] = used["jobs"].get<double>() + 1;
    EtaJobInfo& info = snap_.jobs[key];
    info.name = "name-of-" + key;
    info.durations = holds;
    info.granted_at = snap_.now - std::chrono::duration_cast<std::chrono::system_clock::duration>(Seconds(elapsed));
  }
  void Queued(const std::string& tenant, const std::string& key, double cpu, std::optional<RunDurations> holds,
              int priority = 0) {
    if (!snap_.scheduler["tenants"].contains(tenant)) Tenant(tenant, {{"cpu", 0}, {"memoryMb", 0}, {"jobs", 0}});
    snap_.scheduler["queue"].push_back(Entry(tenant, key, cpu, priority));
    snap_.jobs[key].name = "name-of-" + key;
    snap_.jobs[key].durations = holds;
  }
  Json Entry(const std::string& tenant, const std::string& key, double cpu, int priority) {
    const int64_t seq = snap_.scheduler["seq"].get<int64_t>();
    snap_.scheduler["seq"] = seq + 1;
    return {{"job", key},     {"tenant", tenant},     {"instance", key}, {"cpu", cpu},
            {"memoryMb", 32}, {"priority", priority}, {"seq", seq}};
  }
  // Seconds from now to `t`.
  double In(const std::optional<TimePoint>& t) const {
    return t ? std::chrono::duration<double>(*t - snap_.now).count() : -1;
  }

  EtaSnapshot snap_;
};

TEST_F(AdmissionEtaTest, SummarizesRunDurationsByNearestRank) {
  auto d = SummarizeRunDurations({Seconds(5), Seconds(1), Seconds(3), Seconds(2), Seconds(4)});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->samples, 5);
  EXPECT_DOUBLE_EQ(d->p50.count(), 3);
  EXPECT_DOUBLE_EQ(d->p90.count(), 5);
  auto one = SummarizeRunDurations({Seconds(10)});
  ASSERT_TRUE(one.has_value());
  EXPECT_DOUBLE_EQ(one->p50.count(), 10);
  EXPECT_DOUBLE_EQ(one->p90.count(), 10);
  // Ten samples 1..10: p50 is the 5th, p90 the 9th.
  std::vector<Seconds> ten;
  for (int i = 10; i >= 1; --i) ten.push_back(Seconds(i));
  auto d10 = SummarizeRunDurations(ten);
  EXPECT_DOUBLE_EQ(d10->p50.count(), 5);
  EXPECT_DOUBLE_EQ(d10->p90.count(), 9);
  EXPECT_FALSE(SummarizeRunDurations({}).has_value());
  EXPECT_FALSE(SummarizeRunDurations({Seconds(-3)}).has_value());  // a clock step, not a run
}

TEST_F(AdmissionEtaTest, WalksTheQueueAgainstRunningJobsElapsedTimes) {
  // Two cores, both held: r1 for 4 s of its 10, r2 for 7 s of its 10 (p90: 20).
  Running("acme", "r1", 1, 4, Holds(10, 20));
  Running("acme", "r2", 1, 7, Holds(10, 20));
  Queued("acme", "a", 1, Holds(10, 20));
  Queued("acme", "b", 1, Holds(10, 20));
  Queued("acme", "target", 1, Holds(10, 20));
  // r2 ends at +3: a starts (ends +13); r1 at +6: b starts (ends +16); a's end at +13: target.
  EtaEstimate e = EstimateStart(snap_, "target");
  EXPECT_EQ(e.basis, EtaEstimate::Basis::kHistory);
  EXPECT_DOUBLE_EQ(In(e.start_at), 13);
  EXPECT_EQ(e.running_first, 2);
  EXPECT_EQ(e.queued_first, 2);
  // p90: r2 ends +13, r1 +16; a +13..+33, b +16..+36: target at +33.
  EXPECT_DOUBLE_EQ(In(e.start_by), 33);
  EXPECT_TRUE(e.unknown.empty());
  // The first in the queue waits for the first release only.
  EtaEstimate first = EstimateStart(snap_, "a");
  EXPECT_DOUBLE_EQ(In(first.start_at), 3);
  EXPECT_EQ(first.running_first, 1);
  EXPECT_EQ(first.queued_first, 0);
}

TEST_F(AdmissionEtaTest, OverdueRunningJobEndsAfterTheFloorNotInThePast) {
  Running("acme", "late", 2, 30, Holds(10, 12));  // 20 s past its p90
  Queued("acme", "target", 1, Holds(10, 12));
  EtaOptions o;
  o.floor = Seconds(2);
  EtaEstimate e = EstimateStart(snap_, "target", o);
  EXPECT_EQ(e.basis, EtaEstimate::Basis::kHistory);
  EXPECT_DOUBLE_EQ(In(e.start_at), 2);
  EXPECT_DOUBLE_EQ(In(e.start_by), 2);
}

TEST_F(AdmissionEtaTest, FairShareLetsASmallTenantPassALongBacklog) {
  // acme holds one core (ends +10) with three more queued; globex's job
  // (ends +5) frees the other core, and globex's queued job arrived last.
  Running("acme", "acme-run", 1, 0, Holds(10, 10));
  Running("globex", "globex-run", 1, 0, Holds(5, 5));
  Queued("acme", "acme-1", 1, Holds(10, 10));
  Queued("acme", "acme-2", 1, Holds(10, 10));
  Queued("acme", "acme-3", 1, Holds(10, 10));
  Queued("globex", "target", 1, Holds(10, 10));
  // At +5 globex's share is 0 and acme's 1/2: the target goes first,
  // although three jobs arrived before it.
  EtaEstimate e = EstimateStart(snap_, "target");
  EXPECT_DOUBLE_EQ(In(e.start_at), 5);
  EXPECT_EQ(e.queued_first, 0);
  EXPECT_EQ(e.running_first, 1);
  // acme's backlog in order: acme-1 at +10 (acme-run ends), acme-2 at +15
  // (the target ends), acme-3 at +20 (acme-1 ends).
  EXPECT_DOUBLE_EQ(In(EstimateStart(snap_, "acme-1").start_at), 10);
  EXPECT_DOUBLE_EQ(In(EstimateStart(snap_, "acme-2").start_at), 15);
  EXPECT_DOUBLE_EQ(In(EstimateStart(snap_, "acme-3").start_at), 20);
}

TEST_F(AdmissionEtaTest, PriorityWithinATenantAndTheTenantsOwnQuota) {
  // acme may run one job at a time, on an otherwise idle four-core node.
  snap_.scheduler["capacity"]["cpu"] = 4;
  Tenant("acme", {{"cpu", 0}, {"memoryMb", 0}, {"jobs", 1}});
  Running("acme", "own", 1, 2, Holds(6, 6));
  Queued("acme", "low", 1, Holds(8, 8));
  Queued("acme", "urgent", 1, Holds(8, 8), /*priority=*/5);
  // The tenant's quota, not the node, holds them: "urgent" first at +4, "low" after it at +12.
  EXPECT_DOUBLE_EQ(In(EstimateStart(snap_, "urgent").start_at), 4);
  EtaEstimate low = EstimateStart(snap_, "low");
  EXPECT_DOUBLE_EQ(In(low.start_at), 12);
  EXPECT_EQ(low.queued_first, 1);
}

TEST_F(AdmissionEtaTest, WithoutHistoryTheStartIsALowerBoundNamingWhatItWaitsFor) {
  Running("acme", "known", 1, 0, Holds(20, 20));
  Running("globex", "mystery", 1, 0, std::nullopt);  // a name never run before
  Queued("acme", "target", 1, Holds(5, 5));
  EtaEstimate e = EstimateStart(snap_, "target");
  EXPECT_EQ(e.basis, EtaEstimate::Basis::kLowerBound);
  EXPECT_DOUBLE_EQ(In(e.start_at), 1);  // the earliest: "mystery" ends after the floor
  EXPECT_FALSE(e.start_by.has_value());
  EXPECT_EQ(e.unknown, std::vector<std::string>({"mystery"}));
}

TEST_F(AdmissionEtaTest, AJobWithoutHistoryThatDoesNotMatterLeavesTheEstimateExact) {
  // acme may run one job: its target waits for its own job (known), not
  // for globex's unknown one on the roomy node.
  snap_.scheduler["capacity"]["cpu"] = 8;
  Tenant("acme", {{"cpu", 0}, {"memoryMb", 0}, {"jobs", 1}});
  Running("acme", "own", 1, 1, Holds(6, 9));
  Running("globex", "mystery", 1, 0, std::nullopt);
  Queued("acme", "target", 1, std::nullopt);  // its own name's history does not matter either
  EtaEstimate e = EstimateStart(snap_, "target");
  EXPECT_EQ(e.basis, EtaEstimate::Basis::kHistory);
  EXPECT_DOUBLE_EQ(In(e.start_at), 5);
  EXPECT_DOUBLE_EQ(In(e.start_by), 8);
  EXPECT_TRUE(e.unknown.empty());
}

TEST_F(AdmissionEtaTest, ALongQueueInWavesOfTheNodesCapacity) {
  // Two cores, two 10 s jobs just started, 1,000 more of 10 s queued across
  // four tenants: two start every 10 s, fair share taking turns.
  Running("t0", "r0", 1, 0, Holds(10, 10));
  Running("t1", "r1", 1, 0, Holds(10, 10));
  for (int i = 0; i < 1000; ++i) Queued("t" + std::to_string(i % 4), "q" + std::to_string(i), 1, Holds(10, 10));
  const auto began = std::chrono::steady_clock::now();
  EtaEstimate last = EstimateStart(snap_, "q999");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
  EXPECT_EQ(last.basis, EtaEstimate::Basis::kHistory);
  EXPECT_DOUBLE_EQ(In(last.start_at), 5000);  // the 500th wave
  EXPECT_EQ(last.queued_first, 999);
  EXPECT_EQ(last.running_first, 2);
  EXPECT_DOUBLE_EQ(In(EstimateStart(snap_, "q0").start_at), 10);
  std::printf("estimate behind 999 queued jobs: %.1f ms\n", ms);
}

TEST_F(AdmissionEtaTest, NotQueuedAndNeverFitting) {
  Running("acme", "r", 1, 0, Holds(5, 5));
  EXPECT_EQ(EstimateStart(snap_, "r").basis, EtaEstimate::Basis::kNotQueued);
  EXPECT_EQ(EstimateStart(snap_, "nobody").basis, EtaEstimate::Basis::kNotQueued);
  Queued("acme", "huge", 4, Holds(5, 5));  // more than the node's two cores
  EtaEstimate e = EstimateStart(snap_, "huge");
  EXPECT_EQ(e.basis, EtaEstimate::Basis::kNever);
  EXPECT_FALSE(e.start_at.has_value());
}

TEST_F(AdmissionEtaTest, ATenantSeesOtherTenantsJobsOnlyAsCounts) {
  Running("globex", "job.globex.00000000000000aa", 1, 0, std::nullopt);
  snap_.jobs["job.globex.00000000000000aa"].name = "globex-secret-name";
  Running("acme", "job.acme.00000000000000bb", 1, 0, std::nullopt);
  snap_.jobs["job.acme.00000000000000bb"].name = "acme-etl";
  Queued("acme", "job.acme.00000000000000cc", 2, Holds(5, 5));  // waits for both
  const std::string target = "job.acme.00000000000000cc";
  EtaEstimate e = EstimateStart(snap_, target);
  ASSERT_EQ(e.basis, EtaEstimate::Basis::kLowerBound);
  ASSERT_EQ(e.unknown.size(), 2u);
  Json j = EtaJson(snap_, e, Holds(5, 6), "acme");
  const std::string text = j.dump();
  EXPECT_EQ(text.find("globex"), std::string::npos) << text;
  EXPECT_EQ(text.find("00000000000000aa"), std::string::npos) << text;
  EXPECT_EQ(j["basis"], "lowerBound");
  EXPECT_EQ(j["withoutHistory"]["otherTenantsJobs"], 1);
  EXPECT_EQ(j["withoutHistory"]["ownJobs"], 1);
  EXPECT_EQ(j["withoutHistory"]["names"], Json::array({"acme-etl"}));
  EXPECT_EQ(j["startAt"], "2026-12-03T12:00:01.000000Z");
  EXPECT_TRUE(j["startBy"].is_null());
  EXPECT_EQ(j["runTime"]["p50Seconds"], 5.0);
  EXPECT_NE(j["summary"].get<std::string>().find("no start estimate"), std::string::npos) << text;
  // An admin sees every name.
  Json admin = EtaJson(snap_, e, std::nullopt, "");
  EXPECT_NE(admin.dump().find("globex-secret-name"), std::string::npos) << admin.dump();
  EXPECT_TRUE(admin["runTime"].is_null());
}

TEST_F(AdmissionEtaTest, EtaJsonOfAnExactEstimate) {
  Running("acme", "job.acme.00000000000000a1", 2, 4, Holds(10, 14));
  Queued("acme", "job.acme.00000000000000a2", 2, Holds(10, 14));
  const std::string target = "job.acme.00000000000000a2";
  Json j = EtaJson(snap_, EstimateStart(snap_, target), Holds(10, 14), "acme");
  EXPECT_EQ(j["basis"], "history");
  EXPECT_EQ(j["startAt"], "2026-12-03T12:00:06.000000Z");
  EXPECT_EQ(j["startBy"], "2026-12-03T12:00:10.000000Z");
  EXPECT_EQ(j["inSeconds"], 6.0);
  EXPECT_EQ(j["waitsFor"]["runningJobs"], 1);
  EXPECT_EQ(j["waitsFor"]["queuedJobs"], 0);
  EXPECT_FALSE(j.contains("withoutHistory"));
  EXPECT_EQ(j["summary"],
            "expected to start at 12:00:06Z (in 6 s, by 12:00:10Z at p90 run times), after 1 running job ends");
}

}  // namespace
}  // namespace baton::batch
