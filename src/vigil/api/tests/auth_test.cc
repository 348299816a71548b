#include "vigil/api/auth.h"

#include <cstdlib>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::api {
namespace {

using ::testing::HasSubstr;

TEST(TokenTable, FindsTheEntryOfASecretAndNothingElse) {
  TokenTable t;
  t.Add("ops", Role::kAdmin, "admin-secret-0123456789");
  t.Add("ann", Role::kAnalyst, "analyst-secret-0123456789");
  ASSERT_NE(t.Find("analyst-secret-0123456789"), nullptr);
  EXPECT_EQ(t.Find("analyst-secret-0123456789")->name, "ann");
  EXPECT_EQ(t.Find("admin-secret-0123456789")->role, Role::kAdmin);
  EXPECT_EQ(t.Find("analyst-secret-012345678"), nullptr);  // a prefix is not the token
  EXPECT_EQ(t.Find(""), nullptr);
}

TEST(TokenTable, RefusesShortSecretsAndDuplicateNames) {
  TokenTable t;
  EXPECT_THROW(t.Add("x", Role::kViewer, "short"), std::invalid_argument);
  t.Add("x", Role::kViewer, "long-enough-secret-1");
  EXPECT_THROW(t.Add("x", Role::kAdmin, "long-enough-secret-2"), std::invalid_argument);
}

TEST(LoadTokens, ReadsTheEnvironmentList) {
  config::Pipeline p;
  const TokenTable t =
      LoadTokens(p, "a:viewer:viewer-secret-0123456789, b:admin:admin-secret-0123456789");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find("admin-secret-0123456789")->name, "b");
  try {
    LoadTokens(p, "a:boss:secret-secret-secret");
    FAIL() << "an unknown role was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown role 'boss'"));
  }
  EXPECT_THROW(LoadTokens(p, "just-a-token-without-name"), std::invalid_argument);
}

TEST(LoadTokens, ReadsThePipelineTokensFromTheirVariables) {
  ::setenv("VIGIL_TEST_API_TOKEN", "env-secret-0123456789", 1);
  const config::Pipeline p = config::LoadPipelineText(R"(
name: t
input: {fields: [{name: id, type: string}, {name: ts, type: timestamp}, {name: k, type: string}]}
event: {id: id, time: ts, key: k}
api:
  tokens:
    - {name: ops, role: admin, token_env: VIGIL_TEST_API_TOKEN}
)",
                                                      "t.yaml");
  const TokenTable t = LoadTokens(p, nullptr);
  ASSERT_NE(t.Find("env-secret-0123456789"), nullptr);
  EXPECT_EQ(t.Find("env-secret-0123456789")->role, Role::kAdmin);
}

TEST(LoadTokens, PipelineErrorsNameTheLineAndField) {
  ::unsetenv("VIGIL_TEST_UNSET_TOKEN");
  try {
    config::LoadPipelineText(R"(
name: t
input: {fields: [{name: id, type: string}, {name: ts, type: timestamp}, {name: k, type: string}]}
event: {id: id, time: ts, key: k}
api:
  tokens:
    - {name: ops, role: boss, token_env: VIGIL_TEST_UNSET_TOKEN}
    - {name: bad, role: viewer, token: "literal-secret-in-the-file"}
)",
                             "t.yaml");
    FAIL() << "accepted";
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("t.yaml:7:"));
    EXPECT_THAT(e.what(), HasSubstr("api.tokens[0].role: expected viewer, analyst or admin"));
    EXPECT_THAT(e.what(), HasSubstr("api.tokens[0].token_env: $VIGIL_TEST_UNSET_TOKEN is not set"));
    EXPECT_THAT(e.what(), HasSubstr("api.tokens[1].token: secrets do not go in the pipeline"));
  }
}

}  // namespace
}  // namespace vigil::api
