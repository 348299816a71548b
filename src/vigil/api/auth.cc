#include "vigil/api/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "vigil/common/file.h"

namespace vigil::api {

namespace {

std::array<unsigned char, 32> Sha256(std::string_view s) {
  std::array<unsigned char, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out.data());
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kAnalyst:
      return "analyst";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "analyst") return Role::kAnalyst;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

void TokenTable::Add(std::string name, Role role, std::string_view secret) {
  for (const Entry& e : entries_) {
    if (e.name == name) {
      throw std::invalid_argument(fmt::format("API token '{}' is defined twice", name));
    }
  }
  if (secret.size() < kMinSecretBytes) {
    throw std::invalid_argument(fmt::format(
        "API token '{}' is {} bytes; tokens need at least {}, e.g. $(openssl rand -hex 32)", name,
        secret.size(), kMinSecretBytes));
  }
  entries_.push_back({std::move(name), role, Sha256(secret)});
}

const TokenTable::Entry* TokenTable::Find(std::string_view token) const {
  // Every entry is compared, match or not, so the time taken says nothing about which one (or
  // how much of one) matched; comparing hashes means the secret's length leaks nothing either.
  const auto hash = Sha256(token);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    if (CRYPTO_memcmp(hash.data(), e.sha256.data(), hash.size()) == 0) found = &e;
  }
  return found;
}

TokenTable LoadTokens(const config::Pipeline& pipeline, const char* env_tokens) {
  TokenTable table;
  for (const config::ApiTokenSpec& t : pipeline.api_tokens) {
    const std::string where = fmt::format("{}:{}: api.tokens '{}'", pipeline.path, t.line, t.name);
    const std::optional<Role> role = ParseRole(t.role);
    if (!role) throw std::invalid_argument(fmt::format("{}: unknown role '{}'", where, t.role));
    std::string secret;
    if (!t.token_env.empty()) {
      const char* v = std::getenv(t.token_env.c_str());
      if (!v || !*v) {
        throw std::invalid_argument(
            fmt::format("{}: ${} is not set; export it (e.g. export {}=$(openssl rand -hex 32))",
                        where, t.token_env, t.token_env));
      }
      secret = v;
    } else {
      const std::optional<std::string> text = ReadWholeFile(t.token_file);
      if (!text) {
        throw std::invalid_argument(
            fmt::format("{}: cannot read token_file {}", where, t.token_file));
      }
      secret = std::string(Trim(*text));
    }
    table.Add(t.name, *role, secret);
  }
  if (env_tokens && *env_tokens) {
    std::string_view rest = env_tokens;
    for (int n = 1; !rest.empty(); ++n) {
      const size_t comma = rest.find(',');
      const std::string_view item = Trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      const size_t a = item.find(':');
      const size_t b = a == std::string_view::npos ? a : item.find(':', a + 1);
      if (b == std::string_view::npos || a == 0) {
        throw std::invalid_argument(fmt::format(
            "VIGIL_API_TOKENS: entry {}: expected name:role:token (role viewer, analyst or "
            "admin), comma-separated",
            n));
      }
      const std::string_view role_name = item.substr(a + 1, b - a - 1);
      const std::optional<Role> role = ParseRole(role_name);
      if (!role) {
        throw std::invalid_argument(fmt::format(
            "VIGIL_API_TOKENS: entry {}: unknown role '{}'; expected viewer, analyst or admin", n,
            role_name));
      }
      table.Add(std::string(item.substr(0, a)), *role, item.substr(b + 1));
    }
  }
  return table;
}

}  // namespace vigil::api
