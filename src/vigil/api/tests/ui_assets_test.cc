// The dashboard's files as the server sends them: embedded, typed, locked to their own origin.
#include "vigil/api/internal/ui_assets.h"

#include <httplib.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/api/api_server.h"

namespace vigil::api {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(UiAssetsTest, EveryFileIsEmbeddedWithItsType) {
  ASSERT_EQ(ui_internal::Assets().size(), 3u);
  for (const auto& a : ui_internal::Assets()) {
    EXPECT_TRUE(a.path.starts_with("/ui/")) << a.path;
    EXPECT_GT(a.body.size(), 100u) << a.path;
  }
  EXPECT_EQ(ui_internal::FindAsset("/"), ui_internal::FindAsset("/ui/index.html"));
  EXPECT_THAT(std::string(ui_internal::FindAsset("/ui/app.js")->content_type),
              StartsWith("text/javascript"));
  EXPECT_EQ(ui_internal::FindAsset("/ui/../api_server.cc"), nullptr);
  EXPECT_EQ(ui_internal::FindAsset("/ui/nope.js"), nullptr);
}

TEST(UiAssetsTest, ServedWithoutATokenEvenWhenTokensAreRequired) {
  Sources s;
  s.summary = [] { return sink::RunSummary{}; };
  s.tokens.Add("ops", Role::kAdmin, "admin-secret-0123456789");
  ApiServer server(std::move(s));
  const std::string at = server.Start("127.0.0.1:0");
  httplib::Client c("http://" + at);

  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), StartsWith("text/html"));
  EXPECT_THAT(page->body, HasSubstr("<script src=\"/ui/app.js\""));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'self'"));

  auto js = c.Get("/ui/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_THAT(js->body, HasSubstr("/api/stream"));
  EXPECT_EQ(js->get_header_value("X-Content-Type-Options"), "nosniff");

  auto missing = c.Get("/ui/nope.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  // The API itself still wants its token.
  auto alerts = c.Get("/api/pipeline");
  ASSERT_TRUE(alerts);
  EXPECT_EQ(alerts->status, 401);
  server.Stop();
}

}  // namespace
}  // namespace vigil::api
