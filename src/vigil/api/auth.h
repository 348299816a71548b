#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/config/pipeline.h"

namespace vigil::api {

// What a token may do; each role includes the ones below it.
enum class Role : uint8_t { kViewer, kAnalyst, kAdmin };

std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

// TokenTable is the set of API tokens a server accepts: for each, its name (who acted, in the
// audit log), its role and the SHA-256 of its secret. The secrets themselves are not kept.
// Find hashes the presented token and compares it with every entry in constant time. Built at
// start-up, then read-only: const methods are safe from any thread.
class TokenTable {
 public:
  struct Entry {
    std::string name;
    Role role = Role::kViewer;
    std::array<unsigned char, 32> sha256{};
  };

  // Throws std::invalid_argument when the name is taken or the secret is shorter than
  // kMinSecretBytes.
  void Add(std::string name, Role role, std::string_view secret);
  // The entry whose secret is `token`, or null.
  const Entry* Find(std::string_view token) const;
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  static constexpr size_t kMinSecretBytes = 16;

 private:
  std::vector<Entry> entries_;
};

// The tokens a run accepts: the pipeline's api.tokens (each secret read from its token_env
// variable or token_file) plus `env_tokens`, the value of $VIGIL_API_TOKENS
// ("name:role:token,..."; null or empty: none). Throws std::invalid_argument naming the
// entry and what was expected.
TokenTable LoadTokens(const config::Pipeline& pipeline, const char* env_tokens);

}  // namespace vigil::api
