#include "baton/store_reader.h"

#include "baton/store.h"

namespace baton {
namespace {

class StoreAsReader final : public StoreReader {
 public:
  explicit StoreAsReader(Store& store) : store_(store) {}
  Result<QueryPage> QueryInstances(const InstanceQuery& query) override {
    return store_.QueryInstances(query);
  }
  Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id) override {
    return store_.GetHistory(instance_id);
  }

 private:
  Store& store_;
};

}  // namespace

std::unique_ptr<StoreReader> StoreReaderOf(Store& store) {
  return std::make_unique<StoreAsReader>(store);
}

}  // namespace baton
