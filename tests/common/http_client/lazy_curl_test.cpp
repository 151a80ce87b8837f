// fleetlet_curl with FLEETLET_LAZY_CURL: libcurl is loaded by the first call, and every kind
// of argument reaches it intact. ctest runs each case in its own process, so "not loaded yet"
// is observable.
#include <curl/curl.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

bool libcurlLoaded() {
  void* handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  dlclose(handle);  // drops only the reference RTLD_NOLOAD took
  return true;
}

size_t collect(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

class LazyCurlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("fleetlet-lazy-curl-" + std::to_string(::getpid()) + ".txt");
    std::ofstream(path_) << "hello";
    url_ = "file://" + path_.string();
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::filesystem::path path_;
  std::string url_;
};

TEST_F(LazyCurlTest, LibcurlIsLoadedByTheFirstCallNotAtStart) {
  EXPECT_FALSE(libcurlLoaded());
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  EXPECT_TRUE(libcurlLoaded());
}

TEST_F(LazyCurlTest, EveryArgumentTypeReachesLibcurl) {
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  CURL* h = curl_easy_init();
  ASSERT_NE(h, nullptr);
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  // Object pointers, a function pointer, a long.
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_URL, url_.c_str()), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_WRITEDATA, &body), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
  // A curl_off_t: resuming from byte 2 skips "he", so the value arrived.
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, curl_off_t{2}), CURLE_OK);
  ASSERT_EQ(curl_easy_perform(h), CURLE_OK) << error;
  EXPECT_EQ(body, "llo");

  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, curl_off_t{0}), CURLE_OK);
  body.clear();
  ASSERT_EQ(curl_easy_perform(h), CURLE_OK) << error;
  EXPECT_EQ(body, "hello");

  // Every result type: curl_off_t*, char**, long*, double*.
  curl_off_t downloaded = -1;
  EXPECT_EQ(curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &downloaded), CURLE_OK);
  EXPECT_EQ(downloaded, 5);
  char* effective = nullptr;
  EXPECT_EQ(curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective), CURLE_OK);
  ASSERT_NE(effective, nullptr);
  EXPECT_EQ(std::string(effective), url_);
  long code = -1;
  EXPECT_EQ(curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
  EXPECT_EQ(code, 0);  // no protocol status for file://
  double seconds = -1;
  EXPECT_EQ(curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &seconds), CURLE_OK);
  EXPECT_GE(seconds, 0.0);

  EXPECT_STRNE(curl_easy_strerror(CURLE_COULDNT_CONNECT), "");

  curl_easy_reset(h);  // forgets the options: nothing is written to `body` any more
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_URL, url_.c_str()), CURLE_OK);
  std::string other;
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_WRITEDATA, &other), CURLE_OK);
  EXPECT_EQ(curl_easy_perform(h), CURLE_OK);
  EXPECT_EQ(other, "hello");
  EXPECT_EQ(body, "hello");
  curl_easy_cleanup(h);
}

TEST_F(LazyCurlTest, ListsAreBuiltAndFreedByLibcurl) {
  curl_slist* list = curl_slist_append(nullptr, "Accept: a");
  ASSERT_NE(list, nullptr);
  list = curl_slist_append(list, "X-Second: b");
  ASSERT_NE(list->next, nullptr);
  EXPECT_STREQ(list->next->data, "X-Second: b");
  curl_slist_free_all(list);
  curl_slist_free_all(nullptr);
  curl_easy_cleanup(nullptr);
}

}  // namespace
