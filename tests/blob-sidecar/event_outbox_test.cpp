#include "events/event_outbox.h"

#include <gtest/gtest.h>

#include "store/blob_store.h"
#include "support/blob_client.h"
#include "support/temp_dir.h"

namespace fleetlet::blobevents {
namespace {

using namespace std::chrono_literals;

TEST(EventPublisherTest, DeliversQueuedEventsOnceTheServiceIsBack) {
  auto dir = testing::TempDir::create("fleetlet-outbox");
  ASSERT_TRUE(dir);
  auto events = blobtest::RecordingEventService::start();
  ASSERT_TRUE(events) << events.error().message();
  (*events)->setAvailable(false);

  store::SystemClock clock;
  auto store = store::BlobStore::open({.data_dir = dir->path()}, clock);
  ASSERT_TRUE(store);
  auto connection = (*store)->openConnection();
  ASSERT_TRUE(connection);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(enqueueEvent(*connection, metadataEvent(Json{{"handle", std::to_string(i)}})));
  }
  auto publisher_db = (*store)->openConnection();
  ASSERT_TRUE(publisher_db);
  auto publisher = EventPublisher::create(
      std::move(*publisher_db),
      {.events_url = (*events)->baseUrl(), .initial_backoff = 20ms, .max_backoff = 50ms});
  publisher->start();
  // While the service answers 503, nothing is dropped.
  EXPECT_TRUE((*events)->waitForEvents(1, 300ms).empty());
  (*events)->setAvailable(true);
  auto got = (*events)->waitForEvents(3, 10s);
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i]["semantics"], kMetadataSemantics);
    EXPECT_EQ(got[i]["name"], kMetadataName);
    EXPECT_EQ(got[i]["payload"]["handle"], std::to_string(i));
  }
  publisher.reset();
  auto left = connection->prepare("SELECT count(*) FROM event_outbox");
  ASSERT_TRUE(left && left->step().value());
  EXPECT_EQ(left->columnInt64(0), 0) << "delivered events leave the outbox";
}

}  // namespace
}  // namespace fleetlet::blobevents
